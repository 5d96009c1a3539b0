"""Ship events to Kafka: batch them, encode versioned msgpack envelopes, survive broker outages.

Path of an event: capture thread -> ``Publisher.add`` (bounded, counted drops) -> batcher thread (by size
or linger) -> kafka-python producer (acks=all, idempotent, gzip, its own batching by size and linger)
or, while Kafka is unreachable, the on-disk spool, replayed in order when it returns.

Key: ``topics.trace_key(host, root pid)`` — or the ``--trace-label`` when one is given, so a job's
processes on every host meet on one partition (see schemas/topics.py for the trade-off). A program can name
its own trace: ``SYSWEAVE_TRACE_LABEL`` or a W3C ``TRACEPARENT`` in its environment at exec (read by the
kernel program, ``env_of``) keys it and its descendants from that exec on by ``topics.key_from_env``.

Errors::

    PublishError   -- the publisher was misconfigured (bad bootstrap string); outages are not errors
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from sysweave.agents.queues import DropQueue
from sysweave.agents.spool import Spool
from sysweave.schemas import codec, topics
from sysweave.schemas.errors import AgentError
from sysweave.schemas.events import Event, ProcessEvent, ProcessEventType

__all__ = ["PublishError", "Publisher"]

log = logging.getLogger("sysweave.agent")


class PublishError(AgentError):
    pass


class Publisher:
    def __init__(self, bootstrap: str, host_id: str, spool: Spool, trace_label: str | None = None,
                 batch_events: int = 2000, linger_s: float = 0.1, queue_capacity: int = 500_000,
                 producer_factory: Callable[[], Any] | None = None,
                 parent_of: Callable[[int], int | None] | None = None,
                 env_of: Callable[[int], tuple[str, ...] | None] | None = None) -> None:
        if not bootstrap or ":" not in bootstrap:
            raise PublishError(f"--kafka {bootstrap!r}: expected HOST:PORT[,HOST:PORT...]")
        self.bootstrap = bootstrap
        self.host_id = host_id
        self.spool = spool
        self.trace_label = trace_label
        self.batch_events = batch_events
        self.linger_s = linger_s
        self.queue: DropQueue[Event] = DropQueue(queue_capacity)
        self.producer_id = random.getrandbits(64)
        self.sequence = 0
        self.root_of: dict[int, int] = {}
        self.parent_of = parent_of or (lambda _pid: None)
        self.env_of = env_of or (lambda _pid: None)
        self.named: dict[int, bytes] = {}  # root pid -> the key its exec environment asked for
        self.counters = {"shipped_events": 0, "shipped_batches": 0, "spooled_batches": 0, "send_errors": 0}
        self._factory = producer_factory or self._make_producer
        self._producer: Any = None
        self._healthy = False
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._batch_loop, name="sysweave-batcher", daemon=True),
                         threading.Thread(target=self._replay_loop, name="sysweave-replay", daemon=True)]

    def _make_producer(self) -> Any:
        from kafka import KafkaProducer

        return KafkaProducer(bootstrap_servers=self.bootstrap.split(","), acks="all", enable_idempotence=True,
                             compression_type="gzip", linger_ms=20, batch_size=1 << 20, max_request_size=16 << 20,
                             request_timeout_ms=10_000, max_block_ms=5_000, retries=5, delivery_timeout_ms=30_000)

    # --- input -----------------------------------------------------------------------------------
    def add(self, event: Event) -> None:
        """Called from the capture thread: never blocks; drops beyond capacity are counted."""
        self.queue.put(event)

    def key_for(self, e: Event) -> bytes:
        if self.trace_label:
            return self.trace_label.encode()
        pid = e.h.pid
        if isinstance(e, ProcessEvent) and e.type is ProcessEventType.FORK:
            self.root_of[e.child_pid] = self.root(pid)
        elif isinstance(e, ProcessEvent) and e.type is ProcessEventType.EXEC:
            named = topics.key_from_env(self.env_of(pid) or ())
            if named is not None and self.named.get(self.root(pid)) != named:
                self.root_of[pid] = pid  # it and its descendants, from this exec on
                self.named[pid] = named
        root = self.root(pid)
        return self.named.get(root) or topics.trace_key(self.host_id, root)

    def root(self, pid: int) -> int:
        """The traced tree a process belongs to. A child's first events can arrive before its parent's
        fork event, so unknown pids are placed by the kernel's fork record (``parent_of``), else /proc."""
        known = self.root_of.get(pid)
        if known is not None:
            return known
        root = pid
        ppid = self.parent_of(pid)
        if ppid is None:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                ppid = None
        if ppid is not None and ppid in self.root_of:
            root = self.root_of[ppid]
        self.root_of[pid] = root
        return root

    def add_root(self, pid: int) -> None:
        self.root_of[pid] = pid

    # --- batching and sending ---------------------------------------------------------------------
    def start(self) -> None:
        for t in self._threads:
            t.start()

    def _batch_loop(self) -> None:
        pending: dict[bytes, list[Event]] = {}
        deadline = time.monotonic() + self.linger_s
        while True:
            items = self.queue.get_batch(self.batch_events, max(deadline - time.monotonic(), 0.001))
            for e in items:
                pending.setdefault(self.key_for(e), []).append(e)
            full = any(len(v) >= self.batch_events for v in pending.values())
            if full or time.monotonic() >= deadline or (self.queue.closed and not items):
                for key, events in pending.items():
                    self._send(key, events)
                pending = {}
                deadline = time.monotonic() + self.linger_s
            if self.queue.closed and not items and not len(self.queue):
                return

    def _encode(self, key: bytes, events: list[Event]) -> bytes:
        self.sequence += 1
        batch = codec.Batch(self.producer_id, self.sequence, time.time_ns(), tuple(events))
        return topics.EventBatchMessage(key, batch).encode()

    def _send(self, key: bytes, events: list[Event]) -> None:
        value = self._encode(key, events)
        if not self._healthy or len(self.spool):
            self._spool(key, value, len(events))  # keep order: nothing overtakes what is spooled
            return
        n = len(events)
        try:
            fut = self._producer.send(topics.TOPIC_EVENTS, key=key, value=value)
            fut.add_callback(lambda _md: self._shipped(n))
            fut.add_errback(lambda exc: self._failed(exc, key, value, n))
        except Exception as exc:  # KafkaTimeoutError (metadata), BufferError...
            self._failed(exc, key, value, n)

    def _shipped(self, n: int) -> None:
        self.counters["shipped_events"] += n
        self.counters["shipped_batches"] += 1

    def _failed(self, exc: BaseException, key: bytes, value: bytes, n: int) -> None:
        self.counters["send_errors"] += 1
        if self._healthy:
            log.warning("Kafka unavailable (%s): spooling batches to %s", exc, self.spool.dir)
        self._healthy = False
        self._spool(key, value, n)

    def _spool(self, key: bytes, value: bytes, n: int) -> None:
        self.spool.push(key, value, n)
        self.counters["spooled_batches"] += 1

    def _replay_loop(self) -> None:
        """Reconnect while unhealthy; replay the spool in order; then switch back to direct sends."""
        backoff = 0.5
        failures = 0
        while not self._stop.is_set():
            if self._producer is None:
                try:
                    self._producer = self._factory()
                    self._healthy = True
                    backoff = 0.5
                except Exception as exc:  # NoBrokersAvailable and friends: retry with backoff
                    log.info("Kafka not reachable yet (%s); retrying in %.1f s", exc, backoff)
                    self._stop.wait(backoff * random.uniform(0.8, 1.2))
                    backoff = min(backoff * 2, 10)
                    continue
            head = self.spool.peek()
            if head is None:
                self._healthy = True
                self._stop.wait(0.2)
                continue
            path, key, value, n = head
            try:
                self._producer.send(topics.TOPIC_EVENTS, key=key, value=value).get(timeout=15)
                self.spool.remove(path)
                self._shipped(n)
                failures = 0
            except Exception as exc:
                self._healthy = False
                failures += 1
                if failures >= 2:
                    # an idempotent producer whose batches expired during a long outage cannot resume its
                    # sequence numbers (seen after 60 s without the broker): start over with a fresh producer id
                    old, self._producer = self._producer, None
                    try:
                        old.close(timeout=0)
                    except Exception:
                        pass
                log.info("replay paused (%s); retrying in %.1f s", exc, backoff)
                self._stop.wait(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, 10)

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what is queued (to Kafka or the spool) within ``timeout_s``; never loses queued events."""
        end = time.monotonic() + timeout_s
        self.queue.close()
        self._threads[0].join(max(end - time.monotonic(), 0.1))
        if self._producer is not None:
            try:
                self._producer.flush(timeout=max(end - time.monotonic(), 0.1))
            except Exception as exc:
                log.warning("flush incomplete: %s (unsent batches are spooled by their error callbacks)", exc)
        while len(self.spool) and time.monotonic() < end:
            time.sleep(0.1)  # the replay thread drains (or keeps reconnecting); what is left stays on disk
        self._stop.set()
        self._threads[1].join(2)
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:
                pass
