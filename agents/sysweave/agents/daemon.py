"""The per-host agent daemon (a DaemonSet in Kubernetes): capture, publish to Kafka, obey the control topic.

``sysweave agent`` parses its flags into an :class:`AgentConfig` and calls :func:`run_agent`; everything the
daemon does lives here. Counters are exported for Prometheus at ``metrics_addr:metrics_port``; SIGTERM
flushes (to Kafka, or to the spool) and exits within ``shutdown_timeout_s``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sysweave.agents.bpf.syscalls import CaptureError
from sysweave.agents.bpf.uprobes import CLASS_COMPUTE, CLASS_GPU_KERNEL, CLASS_MEMCPY
from sysweave.agents.bpf.uprobes_session import LayerOptions, Layers, start_layers
from sysweave.agents.decisions import log_events, read_decision_log
from sysweave.agents.publisher import Publisher, PublishError
from sysweave.agents.sdk_server import ENV as SDK_ENV
from sysweave.agents.sdk_server import SdkServer
from sysweave.agents.session import CaptureOptions, CaptureResult, EbpfCapture, host_identity, wall_offset_ns
from sysweave.agents.spool import Spool
from sysweave.schemas import topics
from sysweave.schemas.errors import AgentError
from sysweave.schemas.topics import ControlDecision, OperationClass

__all__ = ["LAYER_CLASSES", "AgentConfig", "AgentMetrics", "apply_decision", "run_agent"]

# the function-probe program's map slot of each operation class it times (syscalls have their own program)
LAYER_CLASSES: dict[OperationClass, int] = {OperationClass.COMPUTE: CLASS_COMPUTE,
                                            OperationClass.GPU_KERNEL: CLASS_GPU_KERNEL,
                                            OperationClass.MEMCPY: CLASS_MEMCPY}

log = logging.getLogger("sysweave.agent")


@dataclass
class AgentConfig:
    kafka: str
    host_id: str = ""
    trace_label: str | None = None
    command: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    all_processes: bool = False
    cgroup: str | None = None
    metrics_addr: str = "127.0.0.1"
    metrics_port: int = 9464  # 0: off
    spool_dir: str | None = None
    spool_max_mb: int = 256
    window_s: float = 5.0
    slow_ns: int = 10_000
    observable: bool = False
    uprobes: list[str] = field(default_factory=list)  # --uprobe specs (sysweave.agents.bpf.uprobes_spec)
    usdt: list[str] = field(default_factory=list)  # --usdt specs (uprobes_spec.parse_usdt)
    compute_ns: int = 50_000  # compute-block threshold of function probes
    gpu: bool = False  # NVML samples, CUDA driver API probes, the CUPTI hook for a traced Python
    gpu_interval_s: float = 0.1
    cuda_lib: str | None = None
    netns: str | None = None  # test facility: the "host" is a network namespace
    clock_offset_ns: int = 0  # test facility: a skewed host clock
    sdk: bool = True  # the SDK socket, announced to CMD in $SYSWEAVE_SDK_SOCKET
    decisions: str | None = None  # a transpiler's decision log (JSONL) for CMD: its decisions join CMD's trace
    shutdown_timeout_s: float = 10.0


class AgentMetrics:
    """Prometheus collector over the live counters (read at scrape time, no double bookkeeping)."""

    def __init__(self, pub: Publisher, cap: EbpfCapture, sdk: SdkServer | None = None,
                 layers: Layers | None = None) -> None:
        self.pub, self.cap, self.sdk, self.layers = pub, cap, sdk, layers

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        lost = self.cap.probe.lost()
        shipped = self.cap.shipped
        calls = self.cap.calls_counted()
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
                          "spool_overflow": self.pub.spool.dropped_events,
                          **(dict(self.sdk.lost) if self.sdk else {}),
                          **(self.layers.session.program.lost() if self.layers and self.layers.session else {})}.items():
            lost_family.add_metric([source], n)
        yield lost_family
        yield GaugeMetricFamily("sysweave_agent_spool_bytes", "bytes waiting in the spool", value=self.pub.spool.size_bytes)
        yield GaugeMetricFamily("sysweave_agent_slow_threshold_ns", "the kernel's current sampling threshold",
                                value=self.cap.probe.slow_threshold())
        if self.layers and self.layers.session:  # function probes: their class thresholds, as the kernel applies them
            g = GaugeMetricFamily("sysweave_agent_uprobe_threshold_ns", "function-probe thresholds by class",
                                  labels=["class"])
            for op, slot in LAYER_CLASSES.items():
                g.add_metric([op.value], self.layers.session.program.threshold(slot))
            yield g


def apply_decision(decision: ControlDecision, host_id: str, cap: EbpfCapture, layers: Layers | None) -> bool:
    """Write a sampling decision for this host into the kernel threshold of its class; False when it is for
    another host or for a class this agent does not time (no function probes)."""
    if decision.host_id != host_id:
        return False
    if decision.cls is OperationClass.SYSCALL:
        cap.probe.set_slow_threshold(decision.threshold_ns)
        return True
    if layers is not None and decision.cls in LAYER_CLASSES:
        layers.set_threshold(LAYER_CLASSES[decision.cls], decision.threshold_ns)
        return True
    return False


def control_loop(bootstrap: str, host_id: str, cap: EbpfCapture, stop: threading.Event,
                 layers: Layers | None = None) -> None:
    """Apply the stream layer's sampling decisions (TOPIC_CONTROL, ``topics.ControlDecision``) to the kernel
    thresholds; a malformed message is logged and skipped."""
    try:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(topics.TOPIC_CONTROL, bootstrap_servers=bootstrap.split(","), auto_offset_reset="latest",
                                 consumer_timeout_ms=500, group_id=None)
    except Exception as exc:  # kafka-python raises many types here; the daemon keeps static thresholds
        log.info("control topic unavailable (%s): keeping static thresholds", exc)
        return
    while not stop.is_set():
        for msg in consumer:
            try:
                apply_decision(ControlDecision.decode(msg.value), host_id, cap, layers)
            except topics.MessageError as exc:
                log.warning("ignoring a malformed control message: %s", exc)
    consumer.close()


def start_sdk(pub: Publisher, host_id: str, cfg: AgentConfig) -> SdkServer | None:
    """The SDK socket; CMD inherits $SYSWEAVE_SDK_SOCKET (running processes may set it to the logged path)."""
    try:
        sdk = SdkServer(pub.add, host_id, wall_offset_ns() + cfg.clock_offset_ns).start()
    except AgentError as exc:
        log.warning("%s: sysweave.sdk calls are not recorded", exc)
        return None
    os.environ.update(sdk.env())
    log.info("SDK socket %s=%s", SDK_ENV, sdk.path)
    return sdk


def run_agent(cfg: AgentConfig) -> int:
    """Run the daemon until its command exits, its pids exit, or SIGTERM; returns the exit status."""
    host_id = cfg.host_id or host_identity()
    command = list(cfg.command)
    if cfg.netns and command:
        command = ["ip", "netns", "exec", cfg.netns, *command]
    decision_log = read_decision_log(cfg.decisions) if cfg.decisions else None  # DecisionLogError: before capture
    cap, pub, layers = _open_capture(cfg, host_id, command)
    pub.start()
    sdk = start_sdk(pub, host_id, cfg) if cfg.sdk else None
    sdk_start = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    stop = threading.Event()
    # Whole-host and cgroup targets are set before the metrics endpoint answers: tests and orchestrators
    # take an answering endpoint as "ready", and a process started after that must be traced (records made
    # before attach() starts draining wait in the ring buffer). Set after it, a loaded machine could start a
    # job's process in the gap, untraced (a multi-host job missing a host, issue 15).
    if not command and cfg.all_processes:
        cap.probe.trace_all(os.getpid())
    elif not command and cfg.cgroup:
        cap.probe.trace_cgroup(cfg.cgroup)
    _start_side_threads(cfg, host_id, cap, pub, sdk, layers, stop)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    result: CaptureResult
    for pid in cfg.pids:
        pub.add_root(pid)
    try:
        if command:
            result = cap.run_command(command, env=layers.child_env())
        else:
            result = cap.attach(cfg.pids, stop)  # whole-host / cgroup targets: set above, before "ready"
    finally:
        stop.set()
    for e in (*result.aggregates, *result.extra_events, *layers.finish(result.root_pid)):
        pub.add(e)
    if sdk is not None:  # what the SDK socket could not take, on the root process's timeline
        sdk.close()
        for e in sdk.lost_events(result.root_pid, sdk_start, time.clock_gettime_ns(time.CLOCK_MONOTONIC)):
            pub.add(e)
        result.lost.update(sdk.lost)
    if decision_log is not None:
        for bad in decision_log.bad:
            log.warning("%s:%d: %s (line skipped)", cfg.decisions, bad.line, bad.message)
        for e in log_events(decision_log, host_id, result.root_pid, sdk_start, wall_offset_ns() + cfg.clock_offset_ns):
            pub.add(e)
    _close(cfg, pub, result)
    return result.exit_code


def _open_capture(cfg: AgentConfig, host_id: str, command: list[str]) -> tuple[EbpfCapture, Publisher, Layers]:
    """The capture, its publisher (spooling to disk while Kafka is away) and the function/GPU layers."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    try:
        spool = Spool(cfg.spool_dir or os.path.join(state, "sysweave", "spool", host_id), cfg.spool_max_mb << 20)
        options = CaptureOptions(follow=True, slow_ns=cfg.slow_ns, observable=cfg.observable,
                                 host_id=host_id, clock_skew_ns=cfg.clock_offset_ns)
        sink: list[Publisher] = []
        cap = EbpfCapture(options, lambda e: sink[0].add(e), netns=cfg.netns)
        pub = Publisher(cfg.kafka, host_id, spool, cfg.trace_label, parent_of=cap.decoder.parent_of.get,
                        env_of=cap.decoder.exec_env.get)
        sink.append(pub)
        layers = start_layers(LayerOptions(tuple(cfg.uprobes), cfg.compute_ns, cfg.gpu, cfg.gpu_interval_s, cfg.cuda_lib,
                                           usdt=tuple(cfg.usdt)),
                              cap.probe, pub.add, host_id, wall_offset_ns() + cfg.clock_offset_ns, command, cfg.pids,
                              warn=log.warning)
    except (PublishError, CaptureError, OSError) as exc:
        log.error("%s", exc)
        raise
    return cap, pub, layers


def _start_side_threads(cfg: AgentConfig, host_id: str, cap: EbpfCapture, pub: Publisher, sdk: SdkServer | None,
                        layers: Layers, stop: threading.Event) -> None:
    """The metrics endpoint (the "ready" signal), the control-topic reader, and the aggregate windows."""
    if cfg.metrics_port:
        from prometheus_client import start_http_server
        from prometheus_client.core import CollectorRegistry

        registry = CollectorRegistry()
        registry.register(AgentMetrics(pub, cap, sdk, layers))
        start_http_server(cfg.metrics_port, addr=cfg.metrics_addr, registry=registry)
    threading.Thread(target=control_loop, args=(cfg.kafka, host_id, cap, stop, layers), daemon=True).start()

    def windows() -> None:
        while not stop.wait(cfg.window_s):
            aggs, _lost, extra = cap.snapshot(os.getpid())
            for e in (*aggs, *extra, *layers.snapshot(os.getpid())):
                pub.add(e)

    threading.Thread(target=windows, name="sysweave-windows", daemon=True).start()


def _close(cfg: AgentConfig, pub: Publisher, result: CaptureResult) -> None:
    """Flush the publisher (to Kafka or the spool) and log what was shipped and what was lost."""
    pub.close(cfg.shutdown_timeout_s)
    c = pub.counters
    log.info("shipped %d events in %d batches; %d batches spooled (%d waiting); lost: %s", c["shipped_events"],
             c["shipped_batches"], c["spooled_batches"], len(pub.spool),
             {**result.lost, "publish_queue": pub.queue.dropped, "spool_overflow": pub.spool.dropped_events})
