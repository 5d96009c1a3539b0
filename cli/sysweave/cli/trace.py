"""``sysweave trace``: strace's interface over eBPF capture (ptrace fallback), with an embedded store."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, Any

from sysweave.agents.bpf.syscalls import BpfUnavailable, CaptureError, ProbeConfig, TargetError, dump_bpf, unavailable_reason
from sysweave.agents.bpf.uprobes_session import LayerOptions, start_layers
from sysweave.agents.bpf.uprobes_spec import SpecError, parse_spec, parse_usdt
from sysweave.agents.decisions import DecisionLog, DecisionLogError, log_events, read_decision_log
from sysweave.agents.preconditions import establish
from sysweave.agents.sdk_server import ENV as SDK_ENV
from sysweave.agents.sdk_server import SdkServer
from sysweave.agents.session import CaptureOptions, CaptureResult, EbpfCapture, check_pids, host_identity, wall_offset_ns
from sysweave.cli.filters import FilterError, parse_trace_expr
from sysweave.cli.render import (
    LAYER_EVENTS,
    LineStyle,
    compute_summary_text,
    event_json,
    function_rows,
    layer_line,
    render_line,
    span_json,
    summarize,
    summary_csv,
    summary_document,
    summary_text,
)
from sysweave.schemas.errors import AgentError
from sysweave.schemas.events import Event, FunctionAggregate, LostEvents, SyscallSpan

__all__ = ["MAX_STORED_EVENTS", "add_arguments", "capture", "choose_backend", "finish_sdk", "layer_options",
           "parser_help", "report", "run", "start_sdk", "store_trace"]

MAX_STORED_EVENTS = 2_000_000  # per trace, in memory before the store write; beyond: counted as lost


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", dest="follow", action="store_true", help="follow forks: trace all descendants")
    p.add_argument("-p", dest="pids", type=int, action="append", default=[], metavar="PID",
                   help="attach to a running process (every thread); repeatable")
    p.add_argument("-e", dest="exprs", action="append", default=[], metavar="EXPR",
                   help="trace=NAMES: names, %%classes (%%file, %%network, %%process, %%memory, %%signal, %%desc), "
                        "/regex, !negation")
    p.add_argument("-c", dest="summary_only", action="store_true", help="count calls, errors and time; print a summary at exit")
    p.add_argument("-C", dest="summary_too", action="store_true", help="like -c, and print the calls as well")
    p.add_argument("-T", dest="durations", action="store_true", help="show time spent in each call")
    p.add_argument("-t", dest="timestamps", action="count", default=0, help="timestamps: -t, -tt (µs), -ttt (epoch µs)")
    p.add_argument("-o", dest="output", metavar="FILE", help="write the trace to FILE instead of stderr")
    p.add_argument("-s", dest="strsize", type=int, default=32, metavar="N", help="print at most N bytes of strings (default 32)")
    p.add_argument("--format", choices=("text", "json", "jsonl", "csv"), default="text",
                   help="output format (json/csv apply to the -c summary; jsonl prints one event per line)")
    p.add_argument("--backend", choices=("auto", "ebpf", "ptrace"), default="auto")
    p.add_argument("--no-sampling", dest="ship_all", action="store_true",
                   help="ship every call (default: slow >= --slow-us, failed, first, and process lifecycle calls)")
    p.add_argument("--slow-us", type=float, default=10.0, help="sampling threshold for syscalls in µs (default 10)")
    p.add_argument("--observable", action="store_true", help="ship every observable I/O call with decoded args (validation)")
    p.add_argument("--capture-bytes", type=int, default=4096, help="payload bytes kept per write/send (power of two)")
    p.add_argument("--store", metavar="PATH", help=f"trace store directory (default: {store_default()}; "
                                                   "sysweave store info shows what it holds)")
    p.add_argument("--no-store", action="store_true", help="keep nothing after the run")
    p.add_argument("--retention-days", type=float, metavar="DAYS", default=None,
                   help="remove stored traces older than DAYS (default: $SYSWEAVE_RETENTION_DAYS, unset: keep all; "
                        "sysweave store prune does it on demand)")
    p.add_argument("--label", default="", help="a label stored with the trace")
    p.add_argument("--dump-bpf", action="store_true", help="print the BPF program (with its cflags) and exit")
    p.add_argument("--uprobe", action="append", default=[], metavar="[LIB:]FUNC[,FUNC..]|[LIB:]/REGEX/",
                   help="measure functions without code changes (repeatable): LIB a path or library name (default: the "
                        "traced program), FUNC a symbol with optional argument capture, e.g. 'libm:cos(n=arg1)'")
    p.add_argument("--usdt", action="append", default=[], metavar="[LIB:]PROVIDER:NAME",
                   help="count the hits of a USDT static probe exactly (repeatable; sys/sdt.h probes, e.g. "
                        "'/usr/bin/python3.11:python:gc__start'; LIB as for --uprobe; needs the libbpf loader)")
    p.add_argument("--compute-us", type=float, default=50.0,
                   help="compute-block threshold for --uprobe calls in µs (default 50); faster calls are only counted")
    p.add_argument("--gpu", action="store_true",
                   help="GPU layer: NVML samples, CUDA driver API kernel/copy spans (libcuda uprobes), CUPTI in a traced Python")
    p.add_argument("--gpu-interval", type=float, default=100.0, metavar="MS", help="NVML sampling interval (default 100 ms)")
    p.add_argument("--cuda-lib", metavar="PATH", help="the libcuda to probe (default: libcuda.so.1 from the linker cache)")
    p.add_argument("--gpu-kernel-us", type=float, default=100.0,
                   help="kernel-launch calls at least this long ship as spans (default 100 µs; 0: every launch)")
    p.add_argument("--gpu-copy-us", type=float, default=1000.0,
                   help="copy calls at least this long ship as spans (default 1000 µs; 0: every copy)")
    p.add_argument("--decisions", metavar="FILE.jsonl",
                   help="a transpiler's decision log (docs/sdk.md) stored with the trace; bad lines are reported and skipped")
    p.add_argument("--no-sdk", action="store_true",
                   help="no SDK socket (sysweave.sdk calls in the traced program become no-ops)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")


def _err(msg: str) -> None:
    print(f"sysweave: {msg}", file=sys.stderr)


class _Output:
    """Receives events from the decoder thread: prints the selected ones, keeps them for the store."""

    def __init__(self, args: argparse.Namespace, selected: frozenset[str] | None, stream: IO[str]) -> None:
        self.show = not args.summary_only and args.format in ("text", "jsonl")
        self.jsonl = args.format == "jsonl"
        self.style = LineStyle(show_pid=args.follow or len(args.pids) > 1, timestamps=min(args.timestamps, 3),
                               show_duration=args.durations, string_limit=max(args.strsize, 0))
        self.selected = selected
        self.stream = stream
        self.keep = not args.no_store
        self.events: list[Event] = []
        self.not_kept = 0
        self.printed = 0
        self.seen = 0
        self.pids: set[int] = set()
        # several decoder threads call in (syscalls, function probes, SDK): one writer at a time, or lines interleave
        self._lock = threading.Lock()

    def __call__(self, ev: Event) -> None:
        with self._lock:
            self._take(ev)

    def _take(self, ev: Event) -> None:
        self.seen += 1
        if self.keep:
            if len(self.events) < MAX_STORED_EVENTS:
                self.events.append(ev)
            else:
                self.not_kept += 1
        self.pids.add(ev.h.pid)
        if self.show and isinstance(ev, SyscallSpan) and (self.selected is None or ev.name in self.selected):
            self.stream.write((span_json(ev) if self.jsonl else render_line(ev, self.style)) + "\n")
            self.printed += 1
        elif self.show and isinstance(ev, LAYER_EVENTS):  # compute blocks and GPU events (--uprobe, --gpu)
            self.stream.write((event_json(ev) if self.jsonl else layer_line(ev, self.style)) + "\n")


def _progress(out: _Output, stop: threading.Event) -> None:
    """One live line on a TTY: events/s, processes. Nothing when stderr is not a terminal."""
    last, t0 = 0, time.monotonic()
    while not stop.wait(0.5):
        now = out.seen
        rate = (now - last) / 0.5
        last = now
        line = f"sysweave: {now:,} events ({rate:,.0f}/s), {len(out.pids)} processes, {time.monotonic() - t0:.0f}s"
        sys.stderr.write("\r" + line[: shutil.get_terminal_size().columns - 1] + "\x1b[K")
        sys.stderr.flush()
    sys.stderr.write("\r\x1b[K")


def choose_backend(requested: str) -> tuple[str, str]:
    """(backend, why). auto prefers eBPF and says why it could not use it."""
    if requested == "ptrace":
        return "ptrace", "requested"
    establish(cache=False)  # tracefs: mounted here when missing (bpffs: by the probe, which knows about the cache)
    reason = unavailable_reason()
    if requested == "ebpf":
        if reason:
            raise BpfUnavailable(reason)
        return "ebpf", "requested"
    if reason:
        if not shutil.which("strace"):
            raise BpfUnavailable(f"{reason}; and the ptrace fallback needs strace (apt-get install strace)")
        return "ptrace", reason
    return "ebpf", "eBPF available"


def run(args: argparse.Namespace) -> int:
    if args.dump_bpf:
        print(dump_bpf(ProbeConfig(payload_cap=args.capture_bytes)))
        if args.uprobe or args.usdt or args.gpu:
            from sysweave.agents.bpf.uprobes import dump_bpf as dump_uprobes

            print(dump_uprobes())
        return 0
    plan = _plan(args)
    return plan if isinstance(plan, int) else _trace(args, plan)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the checked arguments ask for."""

    command: list[str]
    selected: frozenset[str] | None  # the -e trace= selection (None: every call)
    backend: str
    decision_log: DecisionLog | None


def _plan(args: argparse.Namespace) -> _Plan | int:
    """The arguments checked (an exit status, said on stderr, when one is wrong), the backend chosen."""
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command and not args.pids:
        _err("must have PROG [ARGS] or -p PID\nTry 'sysweave trace --help' for more information.")
        return 2
    if command and args.pids:
        _err("-p and a command are mutually exclusive")
        return 2
    selected: frozenset[str] | None = None
    try:
        for expr in args.exprs:
            chosen = parse_trace_expr(expr)
            selected = chosen if selected is None else selected & chosen
        for spec in args.uprobe:  # the grammar before anything compiles (names are resolved once the target is known)
            parse_spec(spec)
        for spec in args.usdt:
            parse_usdt(spec)
    except (FilterError, SpecError) as exc:
        _err(str(exc))
        return 2
    if args.capture_bytes & (args.capture_bytes - 1) or not 64 <= args.capture_bytes <= 65536:
        _err(f"--capture-bytes {args.capture_bytes}: must be a power of two between 64 and 65536")
        return 2
    if command and not shutil.which(command[0]) and not os.path.exists(command[0]):
        _err(f"Can't stat '{command[0]}': No such file or directory")
        return 127
    try:
        check_pids(args.pids)
        backend, why = choose_backend(args.backend)
    except TargetError as exc:
        _err(str(exc))
        return 1
    except BpfUnavailable as exc:
        _err(f"--backend ebpf: {exc}")
        return 1
    if args.backend == "auto" and backend != "ebpf":
        _err(f"using the ptrace backend (strace): {why}")
    if backend != "ebpf" and (args.uprobe or args.usdt or args.gpu):
        _err("--uprobe, --usdt and --gpu need the eBPF backend; tracing system calls only")
    try:
        decision_log = read_decision_log(args.decisions) if args.decisions else None
    except DecisionLogError as exc:
        _err(str(exc))
        return 2
    return _Plan(command, selected, backend, decision_log)


def _trace(args: argparse.Namespace, plan: _Plan) -> int:
    """Capture, report, store; the traced command's exit status."""
    stream: IO[str] = open(args.output, "w") if args.output else sys.stderr  # noqa: SIM115
    out = _Output(args, plan.selected, stream)
    sdk = None if args.no_sdk else start_sdk(out)  # the traced program's SDK datagrams join the same sink
    start_mono = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    options = CaptureOptions(follow=args.follow, slow_ns=int(args.slow_us * 1000), observable=args.observable,
                             ship_all=args.ship_all, payload_cap=args.capture_bytes)
    stop_progress = threading.Event()
    if sys.stderr.isatty() and (args.output or args.summary_only):
        threading.Thread(target=_progress, args=(out, stop_progress), daemon=True).start()
    try:
        result = capture(plan.backend, options, out, plan.command, args.pids, layer_options(args))
    except CaptureError as exc:
        _err(str(exc))
        return 1
    finally:
        stop_progress.set()
        if sdk is not None:
            sdk.close()
            os.environ.pop(SDK_ENV, None)
    finish_sdk(sdk, plan.decision_log, args.decisions, out, result, start_mono)
    if out.not_kept:
        result.lost["store_cap"] = out.not_kept
    report(args, out, result, plan.selected, stream)
    if args.output:
        stream.close()
    if not args.no_store:
        store_trace(args, out.events + result.aggregates + result.extra_events, result, plan.command)
    return result.exit_code


def start_sdk(out: _Output) -> SdkServer | None:
    """The SDK socket, announced to the command in $SYSWEAVE_SDK_SOCKET (inherited); None (said) if impossible."""
    try:
        sdk = SdkServer(out, host_identity(), wall_offset_ns()).start()
    except AgentError as exc:
        _err(f"{exc}; sysweave.sdk calls in the traced program are not recorded")
        return None
    os.environ.update(sdk.env())
    return sdk


def finish_sdk(sdk: SdkServer | None, decision_log: DecisionLog | None, log_path: str | None, out: _Output,
               result: CaptureResult, start_mono: int) -> None:
    """SDK losses and the decision log's decisions (on the root process, at the trace's start) into the result."""
    end_mono = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    if sdk is not None:
        for reason, n in sdk.lost.items():
            result.lost[reason] = result.lost.get(reason, 0) + n
        result.extra_events.extend(sdk.lost_events(result.root_pid, start_mono, end_mono))
        for msgs in sdk.errors.values():
            for msg in msgs:
                _err(f"SDK datagram rejected: {msg}")
    if decision_log is not None:
        for bad in decision_log.bad[:20]:
            _err(f"{log_path}:{bad.line}: {bad.message} (line skipped)")
        if len(decision_log.bad) > 20:
            _err(f"{log_path}: {len(decision_log.bad) - 20} more bad lines skipped")
        # a build-time decision has no instant of its own: it sits at the root process's first event
        at = min((e.h.mono_ns for e in out.events if e.h.pid == result.root_pid), default=start_mono)
        for ev in log_events(decision_log, host_identity(), result.root_pid, at, wall_offset_ns()):
            if isinstance(ev, LostEvents):
                result.lost["decision_log"] = ev.count
                result.extra_events.append(ev)
            else:
                out(ev)


def layer_options(args: argparse.Namespace) -> LayerOptions:
    return LayerOptions(uprobes=tuple(args.uprobe), usdt=tuple(args.usdt), compute_ns=int(args.compute_us * 1000),
                        gpu=args.gpu,
                        gpu_interval_s=args.gpu_interval / 1000, cuda_lib=args.cuda_lib,
                        kernel_ns=int(args.gpu_kernel_us * 1000), memcpy_ns=int(args.gpu_copy_us * 1000))


def capture(backend: str, options: CaptureOptions, out: _Output, command: list[str], pids: list[int],
            layer_opts: LayerOptions | None = None) -> CaptureResult:
    if backend == "ptrace":
        from sysweave.agents.ptrace_backend import PtraceCapture

        pt = PtraceCapture(options, out)
        return pt.run_command(command) if command else pt.attach(pids, threading.Event())
    cap = EbpfCapture(options, out)
    try:  # function probes, CUDA probes, NVML: beside the syscall capture, on the same targets
        layers = start_layers(layer_opts or LayerOptions(), cap.probe, out, cap.host_id,
                              wall_offset_ns() + options.clock_skew_ns, command, pids, out.pids)
    except (SpecError, CaptureError) as exc:
        cap.probe.close()
        raise CaptureError(str(exc)) from exc
    try:
        result = cap.run_command(command, env=layers.child_env()) if command else cap.attach(pids, threading.Event())
    except FileNotFoundError as exc:
        raise CaptureError(f"Can't stat '{command[0]}': {exc.strerror}") from exc
    finally:
        extra = layers.finish(pids[0] if pids else 0, set(out.pids))
    for e in extra:
        if isinstance(e, LostEvents):
            result.lost[e.source] = result.lost.get(e.source, 0) + e.count
    result.extra_events.extend(extra)
    return result


def report(args: argparse.Namespace, out: _Output, result: CaptureResult, selected: frozenset[str] | None,
           stream: IO[str]) -> None:
    lost_total = sum(result.lost.values())
    if args.summary_only or args.summary_too:
        rows = summarize(result.aggregates, selected)
        if args.format == "json":
            funcs = [e for e in result.extra_events if isinstance(e, FunctionAggregate)]
            doc = summary_document(rows, result.lost, result.backend, result.exit_code,
                                   {"events_shipped": result.events_shipped, "functions": function_rows(funcs),
                                    "bpf_program": result.program})
            target = stream if args.output else sys.stdout
            target.write(json.dumps(doc) + "\n")
        elif args.format == "csv":
            (stream if args.output else sys.stdout).write(summary_csv(rows))
        else:
            stream.write(summary_text(rows))
            funcs = [e for e in result.extra_events if isinstance(e, FunctionAggregate)]
            if args.uprobe or args.usdt or funcs:
                stream.write(compute_summary_text(funcs))
    elif args.format == "text" and not args.ship_all:
        total = sum(a.calls for a in result.aggregates)
        hidden = max(total - out.printed, 0)
        if hidden and selected is None:
            stream.write(f"sysweave: {hidden:,} of {total:,} calls not shown (fast and successful; -c counts them "
                         f"exactly, --no-sampling shows them all)\n")
    if lost_total:
        stream.write(f"sysweave: LOST {lost_total:,} events ({', '.join(f'{k}={v}' for k, v in result.lost.items() if v)})\n")


def store_trace(args: argparse.Namespace, events: list[Event], result: CaptureResult, command: list[str]) -> None:
    try:
        from sysweave.streams.pipeline import build_trace
        from sysweave.validator.store.base import StoreError
        from sysweave.validator.store.embedded import EmbeddedStore, default_store_path
    except ImportError as exc:
        _err(f"not storing the trace: {exc.name} is not installed (pip install sysweave, or use --no-store)")
        return
    trace_id = os.urandom(16)
    done = build_trace(events, trace_id, label=args.label or " ".join(command)[:200])  # the one pipeline
    trace = done.trace
    for warning in done.warnings:
        _err(f"trace {trace_id.hex()}: {warning}")
    from sysweave.cli.signals import held_signals

    try:
        with held_signals():  # a signal now waits for the write: the store never holds half a trace
            store = EmbeddedStore(args.store or default_store_path(), retention_days=getattr(args, "retention_days", None))
            store.store_trace(trace, label=trace.label, backend=result.backend, exit_code=result.exit_code)
            store.close()
    except StoreError as exc:
        _err(f"the trace was not stored: {exc}")
        return
    if sys.stderr.isatty():
        _err(f"trace {trace_id.hex()} stored; query it with: sysweave query \"SELECT ... WHERE trace_id = '{trace_id.hex()}'\"")


def store_default() -> str:
    """The default store directory, for --help (the store itself may not be installed: the agent image)."""
    try:
        from sysweave.validator.store.paths import default_store_path
    except ImportError:
        return "$SYSWEAVE_STORE or ~/.local/share/sysweave/store"
    return str(default_store_path())


def parser_help() -> dict[str, Any]:
    return {"help": "trace system calls of a command or process (strace-compatible options)"}
