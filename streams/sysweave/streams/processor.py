"""What one stream worker does, as a typed object (pure: no Kafka, no Faust, no clock of its own).

:class:`StreamProcessor` holds the worker's state — the open traces (``buffer.TraceBuffer``), its copy of the
endpoint table and the sighting scanner (``join``), the per-host sampling counts and the sampling authority
(``sampling``), the acknowledgement ledger — and turns each input into :class:`Effects`: the messages to send
(:class:`Outbound`, already encoded through their types in ``schemas.topics``) and the input messages that may
now be acknowledged. ``streams.worker`` only wires Faust's topics and timers to these methods::

    proc = StreamProcessor(WorkerConfig(worker_id="w1"))
    fx = proc.ingest(Incoming(b"h1/42", batch_bytes, (), partition=0, offset=7, handle=event), time.monotonic())
    fx = proc.emit_closed(now_s=time.monotonic(), wall_ns=time.time_ns())
    # send fx.sends in order, then ack fx.acks

Times: ``now_s`` is monotonic seconds, ``wall_ns`` wall-clock nanoseconds, both passed in by the caller.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from sysweave.schemas import codec, topics
from sysweave.schemas.events import Event, SyscallAggregate
from sysweave.schemas.topics import ControlDecision, DeadLetter, EventBatchMessage, HostCounts, Sighting, TraceMessage
from sysweave.streams.buffer import TraceBuffer, finish
from sysweave.streams.endpoints import EndpointTable, SightingScanner
from sysweave.streams.join import host_infos, plan_tree, ripe_windows
from sysweave.streams.pipeline.wire import encode_finished
from sysweave.streams.sampling import ControllerConfig, SamplingAuthority, merged_histogram

__all__ = ["AckLedger", "Ackable", "Effects", "Incoming", "Outbound", "StreamProcessor", "WorkerConfig", "WorkerStats"]

log = logging.getLogger("sysweave.streams")

H = TypeVar("H")


class Ackable(Protocol):
    """An input message's handle the consumer acknowledges (a Faust event)."""

    def ack(self) -> object: ...


Headers = Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to send: topic, key, encoded value, headers."""

    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Incoming:
    """One TOPIC_EVENTS message as the consumer gave it; ``handle`` is what :class:`Effects` hands back to ack."""

    key: bytes | None
    value: bytes
    headers: Headers
    partition: int
    offset: int
    handle: Ackable
    topic: str = topics.TOPIC_EVENTS


@dataclass
class Effects:
    """What a step asks of the glue: send ``sends`` in order, then acknowledge ``acks``."""

    sends: list[Outbound] = field(default_factory=list)
    acks: list[Ackable] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """A worker's settings (seconds; ``max_held_events`` events; ``target_spans_per_s`` per host)."""

    worker_id: str = "sysweave-streams"
    grace_s: float = 2.0
    inactivity_s: float = 30.0
    target_spans_per_s: float = 10_000.0
    control_interval_s: float = 5.0
    join_wait_s: float = 10.0
    max_held_events: int = 2_000_000


@dataclass
class WorkerStats:
    """Counters of one worker since it started (logged by the glue; nothing is lost without a count here)."""

    batches: int = 0
    dead_lettered: int = 0
    traces_emitted: int = 0
    parts_forwarded: int = 0
    decisions: int = 0
    malformed_reports: int = 0
    traces_revoked: int = 0  # open traces dropped when their partition moved away (read again by the new owner)
    batches_not_owned: int = 0  # batches of a partition revoked from this worker, left for its new owner


class AckLedger(Generic[H]):
    """Acknowledge input messages in offset order, and only once their trace has been emitted.

    A worker killed with -9 loses its open traces; their messages must be delivered again, so their offsets
    must not be committed. Faust commits the contiguous run of acked offsets, but can commit past a single
    unacked message at the head of a partition (faust-streaming issue #606, open), which is exactly what one
    long-open trace looks like. So this ledger only ever releases the head of each partition's pending run: an
    open trace holds back commits for its partition (redelivery after a crash, deduplicated by event id),
    never loses them. ``done`` returns the handles to acknowledge now, in offset order per partition.
    """

    def __init__(self) -> None:
        self.pending: dict[int, dict[int, tuple[H, bool]]] = defaultdict(dict)  # partition -> offset -> (h, done)
        self.by_key: dict[bytes, list[tuple[int, int]]] = defaultdict(list)

    def track(self, key: bytes, partition: int, offset: int, handle: H) -> None:
        self.pending[partition][offset] = (handle, False)
        self.by_key[key].append((partition, offset))

    def forget(self, partitions: set[int]) -> None:
        """Partitions revoked from this worker: their pending messages will never be acknowledged here (the new
        owner reads them again from the committed offset)."""
        for partition in partitions:
            self.pending.pop(partition, None)
        for key in list(self.by_key):
            kept = [(p, o) for p, o in self.by_key[key] if p not in partitions]
            if kept:
                self.by_key[key] = kept
            else:
                del self.by_key[key]

    def done(self, key: bytes) -> list[H]:
        touched = set()
        for partition, offset in self.by_key.pop(key, []):
            entry = self.pending[partition].get(offset)
            if entry is not None:
                self.pending[partition][offset] = (entry[0], True)
                touched.add(partition)
        out = []
        for partition in touched:
            pend = self.pending[partition]
            for offset in sorted(pend):
                handle, finished = pend[offset]
                if not finished:
                    break
                out.append(handle)
                del pend[offset]
        return out


class StreamProcessor:
    """One worker's state and its steps (module docstring)."""

    def __init__(self, cfg: WorkerConfig) -> None:
        self.cfg = cfg
        self.buffer = TraceBuffer(grace_s=cfg.grace_s, inactivity_s=cfg.inactivity_s, max_events=cfg.max_held_events)
        self.table, self.scanner = EndpointTable(), SightingScanner()
        self.authority = SamplingAuthority(ControllerConfig(target_spans_per_s=cfg.target_spans_per_s))
        self.acks: AckLedger[Ackable] = AckLedger()
        self.stats = WorkerStats()
        self.shipped: dict[str, int] = defaultdict(int)  # per host since the last report: events its agent sent
        self.hists: dict[str, list[SyscallAggregate]] = defaultdict(list)  # per host: exact aggregates seen
        self.revoked: set[int] = set()  # input partitions taken from this worker and not given back

    def revoke(self, partitions: Iterable[int]) -> int:
        """A rebalance took ``partitions`` away: drop their open traces and pending acknowledgements (nothing is
        committed past them, so their new owner reads them again, whole) and ignore their batches until they are
        assigned back. Returns the number of open traces dropped."""
        gone = set(partitions)
        self.revoked |= gone
        self.acks.forget(gone)
        n = self.buffer.drop_partitions(gone)
        self.stats.traces_revoked += n
        return n

    def assign(self, partitions: Iterable[int]) -> None:
        """A rebalance gave this worker ``partitions`` (again): their batches are ingested from now on."""
        self.revoked -= set(partitions)

    def ingest(self, msg: Incoming, now_s: float) -> Effects:
        """One agent (or forwarded) batch: buffered under its key; a bad one dead-lettered with the reason."""
        fx = Effects()
        if msg.partition in self.revoked:  # still in flight when its partition moved: the new owner reads it
            self.stats.batches_not_owned += 1
            return fx
        try:
            m = EventBatchMessage.decode(msg.key, msg.value, msg.headers)
        except codec.DecodeError as exc:
            self.stats.dead_lettered += 1
            log.warning("dead-lettering %s/%s@%s: %s", msg.topic, msg.partition, msg.offset, exc)
            fx.sends.append(Outbound(topics.TOPIC_DEAD_LETTER, msg.key or b"", msg.value, tuple(
                DeadLetter(str(exc), msg.topic, msg.partition, msg.offset).headers())))
            poison = f"dead-letter/{msg.partition}/{msg.offset}".encode()  # never a trace key
            self.acks.track(poison, msg.partition, msg.offset, msg.handle)
            fx.acks += self.acks.done(poison)
            return fx
        self.stats.batches += 1
        events, joined = m.batch.events, m.joined_from is not None
        self.acks.track(m.key, msg.partition, msg.offset, msg.handle)
        self.buffer.add(m.key, events, now_s, settled=joined, partition=msg.partition)
        if joined:
            return fx  # already counted (sampling) and scanned (join) where it first arrived
        seen = self.scanner.scan(m.key, events)
        fx.sends += self._publish(seen)
        self.buffer.note_accepts(m.key, sum(1 for s in seen if s.role == "server"))
        for e in events:
            self.shipped[e.h.host_id] += 1
            if isinstance(e, SyscallAggregate):
                self.hists[e.h.host_id].append(e)
        return fx

    def add_sightings(self, sightings: Iterable[Sighting]) -> None:
        """Every worker's sightings (TOPIC_ENDPOINTS, read by each worker) into this worker's endpoint table."""
        for s in sightings:
            self.table.add(s)

    def emit_closed(self, now_s: float, wall_ns: int) -> Effects:
        """Traces that closed: held for the join, forwarded, or built by the one pipeline and sent to TOPIC_TRACES;
        their input messages acknowledged."""
        fx = Effects()
        wait_s = self.cfg.join_wait_s
        for t in self.buffer.ready(now_s):
            # a trace closed early at the event limit is not held for the join (that would keep its memory)
            plan = plan_tree(t.key, t.events.values(), self.table, wait_s if t.forced else t.held_for(now_s), wait_s,
                             whole=not t.lent)
            if plan.wait:
                self.buffer.hold(t, now_s)
                continue
            self.buffer.release(t)
            fx.sends += self._publish(plan.publish)
            for key, part in plan.parts.items():
                if key != t.key:  # forwarded to the trace it joins (a late part reopens that trace as an update)
                    fx.sends.append(self._forward(key, part, t.key, wall_ns))
                    continue
                done = finish(t, part, host_infos(part, self.table), defer_stamps=True)
                for warning in done.warnings:
                    log.warning("trace %s: %s", done.trace.trace_id.hex(), warning)
                fx.sends.append(Outbound(topics.TOPIC_TRACES, TraceMessage.key_for(done.trace.trace_id),
                                         encode_finished(done), tuple(TraceMessage.headers_for(done.trace.label))))
                self.stats.traces_emitted += 1
            fx.acks += self.acks.done(t.key)
        self.buffer.forget_closed()
        self.table.prune(wall_ns)
        return fx

    def lend_windows(self, wall_ns: int) -> list[Outbound]:
        """Long-lived servers: complete connection windows go to their clients' traces while the server runs."""
        out = []
        for t in self.buffer.lending_servers():
            for key, part in ripe_windows(t.key, t.events.values(), self.table).items():
                out.append(self._forward(key, part, t.key, wall_ns))
                self.buffer.lend(t, (e.h.event_id for e in part))
        return out

    def host_reports(self) -> list[Outbound]:
        """What this worker saw of each host since the last report (TOPIC_SAMPLING, key = host)."""
        out = []
        for host, n in self.shipped.items():
            c = HostCounts(host, self.cfg.worker_id, n, self.cfg.control_interval_s,
                           tuple(merged_histogram(self.hists[host])))
            out.append(Outbound(topics.TOPIC_SAMPLING, c.key(), c.encode()))
        self.shipped.clear()
        self.hists.clear()
        return out

    def sampling_report(self, value: bytes) -> None:
        """A worker's HostCounts for a host whose TOPIC_SAMPLING partition this worker owns (malformed: counted,
        logged, skipped)."""
        try:
            c = HostCounts.decode(value)
        except topics.MessageError as exc:
            self.stats.malformed_reports += 1
            log.warning("ignoring a malformed sampling report: %s", exc)
            return
        self.authority.report(c.host_id, c.shipped, c.hist_log2)

    def decide(self) -> list[Outbound]:
        """The authority's decisions for its hosts whose threshold changed (TOPIC_CONTROL, key = host)."""
        out = []
        for new in self.authority.step(self.cfg.control_interval_s):
            self.stats.decisions += 1
            d = ControlDecision(new.host_id, new.threshold_ns, new.fraction)
            out.append(Outbound(topics.TOPIC_CONTROL, d.key(), d.encode()))
        return out

    def counters(self) -> dict[str, int]:
        """Every counter of this worker, its buffer's included (for logs and tests)."""
        b = self.buffer
        return {**vars(self.stats), "forced_closes": b.forced_closes, "forgotten_closed": b.forgotten_closed,
                "duplicates": b.duplicates, "late_events": b.late_events, "held_events": b.held_events()}

    def _publish(self, sightings: Iterable[Sighting]) -> list[Outbound]:
        out = []
        for s in sightings:
            self.table.add(s)
            out.append(Outbound(topics.TOPIC_ENDPOINTS, s.message_key(), s.encode()))
        return out

    def _forward(self, key: bytes, part: list[Event], source: bytes, wall_ns: int) -> Outbound:
        """Events forwarded into another trace: one batch, producer id 0 (a worker, not an agent)."""
        self.stats.parts_forwarded += 1
        m = EventBatchMessage(key, codec.Batch(0, 0, wall_ns, tuple(part)), joined_from=source)
        return Outbound(topics.TOPIC_EVENTS, m.key, m.encode(), tuple(m.headers()))
