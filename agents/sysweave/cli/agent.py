"""``sysweave agent``: the per-host daemon that captures and publishes to Kafka (a DaemonSet in Kubernetes).

    sysweave agent --kafka BOOTSTRAP [--host-id ID] [--all | --pid PID... | --cgroup PATH | -- CMD...]

Exports its counters on --metrics-port (Prometheus): events captured, sampled away, shipped, spooled, lost.
SIGTERM flushes (to Kafka, or to the spool) and exits within --shutdown-timeout seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from sysweave.agents.bpf.syscalls import CaptureError
from sysweave.agents.publisher import Publisher, PublishError
from sysweave.agents.session import CaptureOptions, CaptureResult, EbpfCapture, host_identity
from sysweave.agents.spool import Spool
from sysweave.schemas import topics

log = logging.getLogger("sysweave.agent")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kafka", required=True, metavar="BOOTSTRAP", help="HOST:PORT[,HOST:PORT...]")
    p.add_argument("--host-id", default=None, help="this host's id in traces (default: $SYSWEAVE_HOST_ID or hostname)")
    p.add_argument("--trace-label", default=os.environ.get("SYSWEAVE_TRACE_LABEL"),
                   help="partition key shared by every host of one job, so one worker assembles it")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--all", action="store_true", help="every process on the host (but the agent)")
    target.add_argument("--pid", type=int, nargs="+", default=[], help="running processes (every thread)")
    target.add_argument("--cgroup", metavar="PATH", help="every process in this cgroup v2 directory")
    p.add_argument("--metrics-port", type=int, default=9464, help="Prometheus metrics port (0: off)")
    p.add_argument("--spool", default=None, help="spool directory for Kafka outages (default: $XDG_STATE_HOME/sysweave/spool)")
    p.add_argument("--spool-max-mb", type=int, default=256)
    p.add_argument("--window-s", type=float, default=5.0, help="seconds per exact-aggregate window")
    p.add_argument("--slow-us", type=float, default=10.0)
    p.add_argument("--observable", action="store_true", help="ship all observable I/O (validation runs)")
    p.add_argument("--netns", default=None, metavar="NAME",
                   help="TEST FACILITY: the 'host' is a network namespace: run CMD in it and report its addresses")
    p.add_argument("--clock-offset-ns", type=int, default=0,
                   help="TEST FACILITY: add this to every wall timestamp (simulates a skewed host clock)")
    p.add_argument("--shutdown-timeout", type=float, default=10.0)
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")


class _Metrics:
    """Prometheus collector over the live counters (read at scrape time, no double bookkeeping)."""

    def __init__(self, pub: Publisher, cap: EbpfCapture) -> None:
        self.pub, self.cap = pub, cap

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        lost = self.cap.probe.lost()
        shipped = self.cap.shipped
        calls = sum(v[0] for v in self.cap._prev_aggs.values())
        yield CounterMetricFamily("sysweave_agent_events_captured", "events decoded from the kernel", value=shipped)
        yield CounterMetricFamily("sysweave_agent_calls_counted", "syscalls counted exactly in the kernel", value=calls)
        yield CounterMetricFamily("sysweave_agent_events_sampled_away", "calls counted but not shipped",
                                  value=max(calls - shipped, 0))
        yield CounterMetricFamily("sysweave_agent_events_shipped", "events acknowledged by Kafka",
                                  value=self.pub.counters["shipped_events"])
        yield CounterMetricFamily("sysweave_agent_batches_spooled", "batches written to the spool",
                                  value=self.pub.counters["spooled_batches"])
        lost_family = CounterMetricFamily("sysweave_agent_events_lost", "events lost, by where", labels=["source"])
        for source, n in {**lost, "publish_queue": self.pub.queue.dropped,
                          "spool_overflow": self.pub.spool.dropped_events}.items():
            lost_family.add_metric([source], n)
        yield lost_family
        yield GaugeMetricFamily("sysweave_agent_spool_bytes", "bytes waiting in the spool", value=self.pub.spool.size_bytes)


def _control_loop(bootstrap: str, host_id: str, cap: EbpfCapture, stop: threading.Event) -> None:
    """Apply the stream layer's sampling decisions (TOPIC_CONTROL, JSON) to the kernel thresholds."""
    try:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(topics.TOPIC_CONTROL, bootstrap_servers=bootstrap.split(","), auto_offset_reset="latest",
                                 consumer_timeout_ms=500, group_id=None)
    except Exception as exc:
        log.info("control topic unavailable (%s): keeping static thresholds", exc)
        return
    while not stop.is_set():
        for msg in consumer:
            try:
                decision = json.loads(msg.value)
                if decision.get("host_id") == host_id:
                    cap.probe.set_slow_threshold(int(decision["threshold_ns"]))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring a malformed control message: %s", exc)
    consumer.close()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sysweave-agent %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not (command or args.pid or args.all or args.cgroup):
        print("sysweave agent: choose what to trace: --all, --pid PID..., --cgroup PATH, or -- CMD", file=sys.stderr)
        return 2
    host_id = args.host_id or host_identity()
    if args.netns:
        if not command:
            print("sysweave agent: --netns needs -- CMD", file=sys.stderr)
            return 2
        command = ["ip", "netns", "exec", args.netns, *command]
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    try:
        spool = Spool(args.spool or os.path.join(state, "sysweave", "spool", host_id), args.spool_max_mb << 20)
        options = CaptureOptions(follow=True, slow_ns=int(args.slow_us * 1000), observable=args.observable,
                                 host_id=host_id, clock_skew_ns=args.clock_offset_ns)
        sink: list[Publisher] = []
        cap = EbpfCapture(options, lambda e: sink[0].add(e), netns=args.netns)
        pub = Publisher(args.kafka, host_id, spool, args.trace_label, parent_of=cap.decoder.parent_of.get)
        sink.append(pub)
    except (PublishError, CaptureError, OSError) as exc:
        print(f"sysweave agent: {exc}", file=sys.stderr)
        return 1
    pub.start()
    stop = threading.Event()
    if args.metrics_port:
        from prometheus_client import start_http_server
        from prometheus_client.core import CollectorRegistry

        registry = CollectorRegistry()
        registry.register(_Metrics(pub, cap))
        start_http_server(args.metrics_port, addr="127.0.0.1", registry=registry)
    threading.Thread(target=_control_loop, args=(args.kafka, host_id, cap, stop), daemon=True).start()

    def windows() -> None:
        while not stop.wait(args.window_s):
            aggs, _lost, extra = cap.snapshot(os.getpid())
            for e in (*aggs, *extra):
                pub.add(e)

    threading.Thread(target=windows, name="sysweave-windows", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    result: CaptureResult
    for pid in args.pid:
        pub.add_root(pid)
    try:
        if command:
            # the command's pid is its tree's root: known once started, so register it from the first event
            result = cap.run_command(command)
        else:
            if args.all:
                cap.probe.trace_all(os.getpid())
            elif args.cgroup:
                cap.probe.trace_cgroup(args.cgroup)
            result = cap.attach(args.pid, stop)
    except CaptureError as exc:
        print(f"sysweave agent: {exc}", file=sys.stderr)
        return 1
    finally:
        stop.set()
    for e in (*result.aggregates, *result.extra_events):
        pub.add(e)
    pub.close(args.shutdown_timeout)
    c = pub.counters
    log.info("shipped %d events in %d batches; %d batches spooled (%d waiting); lost: %s", c["shipped_events"],
             c["shipped_batches"], c["spooled_batches"], len(spool),
             {**result.lost, "publish_queue": pub.queue.dropped, "spool_overflow": spool.dropped_events})
    return result.exit_code
