"""Output in strace's habits: text lines, and the -c summary as text, JSON, JSONL or CSV."""

from __future__ import annotations

import csv
import dataclasses
import enum
import errno as errno_mod
import io
import json
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sysweave.agents.syscall_args import ARG_SPECS
from sysweave.schemas.events import (
    ComputeBlock,
    FunctionAggregate,
    GpuKernel,
    GpuMemoryTransfer,
    GpuSample,
    Mark,
    SyscallAggregate,
    SyscallSpan,
    TranspilerDecision,
)

__all__ = [
    "LAYER_EVENTS",
    "NEVER_RETURNS",
    "LayerEvent",
    "LineStyle",
    "SummaryRow",
    "compute_summary_text",
    "event_json",
    "function_rows",
    "hist_quantile",
    "layer_line",
    "quote",
    "render_call",
    "render_line",
    "render_oflags",
    "render_result",
    "span_json",
    "summarize",
    "summary_csv",
    "summary_document",
    "summary_text",
]

LayerEvent = ComputeBlock | GpuKernel | GpuMemoryTransfer | GpuSample | TranspilerDecision | Mark

_OFLAGS = [(os.O_WRONLY, "O_WRONLY"), (os.O_RDWR, "O_RDWR"), (os.O_CREAT, "O_CREAT"), (os.O_EXCL, "O_EXCL"),
           (os.O_NOCTTY, "O_NOCTTY"), (os.O_TRUNC, "O_TRUNC"), (os.O_APPEND, "O_APPEND"), (os.O_NONBLOCK, "O_NONBLOCK"),
           (os.O_DSYNC, "O_DSYNC"), (0o40000, "O_DIRECT"), (os.O_DIRECTORY, "O_DIRECTORY"), (os.O_NOFOLLOW, "O_NOFOLLOW"),
           (os.O_CLOEXEC, "O_CLOEXEC"), (0o10000000, "O_PATH"), (0o20200000, "O_TMPFILE")]


def render_oflags(v: int) -> str:
    acc = v & 3
    parts = ["O_RDONLY" if acc == 0 else ("O_WRONLY" if acc == 1 else "O_RDWR")]
    rest = v & ~3
    for bit, name in _OFLAGS[2:]:
        if rest & bit == bit:
            parts.append(name)
            rest &= ~bit
    if rest:
        parts.append(hex(rest))
    return "|".join(parts)


def quote(b: bytes | str, limit: int) -> str:
    """strace-style string: C escapes, cut at ``limit`` bytes with "..." after the quote."""
    raw = b.encode("utf-8", "surrogateescape") if isinstance(b, str) else b
    shown, more = raw[:limit], len(raw) > limit
    out = []
    for c in shown:
        ch = chr(c)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif 32 <= c < 127:
            out.append(ch)
        else:
            out.append(f"\\{c:o}")
    return '"' + "".join(out) + '"' + ("..." if more else "")


def _render_arg(kind: str, value: object, span: SyscallSpan, limit: int) -> str:
    if value is None:
        return "NULL"
    if kind == "at" and value == -100:
        return "AT_FDCWD"
    if kind in ("path", "path2"):
        return quote(str(value), 4096)
    if kind == "oflags" and isinstance(value, int):
        return render_oflags(value)
    if kind == "mode" and isinstance(value, int):
        return f"0{value:o}"
    if kind == "hex" and isinstance(value, int):
        return hex(value)
    if kind == "ptr" and isinstance(value, int):
        return "NULL" if value == 0 else hex(value)
    if kind == "sig" and isinstance(value, int):
        try:
            return signal.Signals(value).name
        except ValueError:
            return str(value)
    if kind == "argv" and isinstance(value, tuple):
        return "[" + ", ".join(quote(str(a), limit) for a in value) + "]"
    if kind == "wstatus" and isinstance(value, int):
        return f"[{{WIFEXITED(s) && WEXITSTATUS(s) == {(value >> 8) & 0xFF}}}]" if value & 0x7F == 0 else \
            f"[{{WIFSIGNALED(s) && WTERMSIG(s) == {value & 0x7F}}}]"
    if kind == "fds" and isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if kind == "addr":
        return "{" + str(value) + "}" if value not in ("", "NULL") else str(value or "NULL")
    return str(value)


def render_call(span: SyscallSpan, limit: int) -> str:
    spec = ARG_SPECS.get(span.name)
    parts = []
    if spec is None:
        parts = [(hex(v) if v > 9 else str(v)) if isinstance(v, int) else str(v) for v in span.args.values()]
    else:
        for arg, kind in spec:
            flags = span.args.get("flags")
            if kind == "mode" and span.name in ("open", "openat") and isinstance(flags, int) and not flags & 0o20100100:
                continue  # strace shows the mode only with O_CREAT / O_TMPFILE
            if kind == "buf":
                parts.append(quote(span.payload or b"", limit) if span.payload is not None else "0x?")
            else:
                parts.append(_render_arg(kind, span.args.get(arg), span, limit))
    return f"{span.name}({', '.join(parts)})"


def render_result(span: SyscallSpan) -> str:
    if span.name in ("exit_group", "exit"):
        return "= ?"
    if span.failed:
        code = span.errno
        return f"= -1 {errno_mod.errorcode.get(code, f'E{code}')} ({os.strerror(code)})"
    if span.name in ("mmap", "brk", "mremap") and span.ret > 0xFFFF:
        return f"= {span.ret:#x}"
    return f"= {span.ret}"


@dataclass(frozen=True, slots=True)
class LineStyle:
    show_pid: bool = False
    timestamps: int = 0  # 0 none, 1 -t, 2 -tt, 3 -ttt
    show_duration: bool = False
    string_limit: int = 32


def render_line(span: SyscallSpan, style: LineStyle) -> str:
    prefix = f"[pid {span.h.tid:>5}] " if style.show_pid else ""
    if style.timestamps:
        wall = span.h.wall_ns
        if style.timestamps == 3:
            prefix += f"{wall // 1_000_000_000}.{wall // 1000 % 1_000_000:06d} "
        else:
            t = time.strftime("%H:%M:%S", time.localtime(wall / 1e9))
            prefix += (t + f".{wall // 1000 % 1_000_000:06d} " if style.timestamps == 2 else t + " ")
    line = f"{prefix}{render_call(span, style.string_limit)} {render_result(span)}"
    if style.show_duration:
        line += f" <{span.h.duration_ns / 1e9:.6f}>"
    return line


# --- the -c summary -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SummaryRow:
    syscall: str
    calls: int
    errors: int
    total_ns: int
    p50_ns: int
    p99_ns: int


def hist_quantile(hist: list[int], q: float) -> int:
    """Quantile from a log2 histogram (bucket i = [2**i, 2**(i+1)) ns): the bucket's geometric middle,
    so the estimate is within a factor of sqrt(2) of the truth. Example: all calls in bucket 10 -> 1448 ns."""
    total = sum(hist)
    if not total:
        return 0
    rank = q * total
    seen = 0
    for i, n in enumerate(hist):
        seen += n
        if seen >= rank and n:
            return int(2 ** (i + 0.5)) if i else 1
    return int(2 ** (len(hist) - 0.5))


# Calls that never return: strace -c leaves them out of its table, and so do we (they stay in the store).
NEVER_RETURNS = frozenset({"exit", "exit_group"})


def summarize(aggs: Iterable[SyscallAggregate], selected: frozenset[str] | None = None) -> list[SummaryRow]:
    """Merge per-process aggregates into one row per syscall, sorted by total time (strace -c's order)."""
    merged: dict[str, list[int]] = {}
    hists: dict[str, list[int]] = {}
    for a in aggs:
        if (selected is not None and a.name not in selected) or a.name in NEVER_RETURNS:
            continue
        m = merged.setdefault(a.name, [0, 0, 0])
        m[0] += a.calls
        m[1] += a.errors
        m[2] += a.total_ns
        h = hists.setdefault(a.name, [0] * len(a.hist_log2))
        for i, n in enumerate(a.hist_log2):
            h[i] += n
    rows = [SummaryRow(name, c, e, t, hist_quantile(hists[name], 0.5), hist_quantile(hists[name], 0.99))
            for name, (c, e, t) in merged.items()]
    rows.sort(key=lambda r: (-r.total_ns, -r.calls, r.syscall))
    return rows


def summary_text(rows: list[SummaryRow]) -> str:
    total_ns = sum(r.total_ns for r in rows) or 1
    out = io.StringIO()
    out.write("% time     seconds  usecs/call     calls    errors syscall\n")
    out.write("------ ----------- ----------- --------- --------- ----------------\n")
    for r in rows:
        usecs = r.total_ns // 1000 // max(r.calls, 1)
        out.write(f"{100 * r.total_ns / total_ns:6.2f} {r.total_ns / 1e9:11.6f} {usecs:11d} {r.calls:9d} "
                  f"{r.errors or '':>9} {r.syscall}\n")
    out.write("------ ----------- ----------- --------- --------- ----------------\n")
    calls, errors = sum(r.calls for r in rows), sum(r.errors for r in rows)
    out.write(f"100.00 {sum(r.total_ns for r in rows) / 1e9:11.6f} {'':11} {calls:9d} {errors or '':>9} total\n")
    return out.getvalue()


def function_rows(aggs: Iterable[FunctionAggregate]) -> list[dict[str, object]]:
    """Per probed function (merged over processes): calls, total_ns, p50_ns, p99_ns, library (the -c JSON)."""
    merged: dict[tuple[str, str], list[int]] = {}
    for a in aggs:
        m = merged.setdefault((a.symbol, a.library), [0, 0] + [0] * len(a.hist_log2))
        m[0] += a.calls
        m[1] += a.total_ns
        for i, n in enumerate(a.hist_log2):
            m[2 + i] += n
    return [{"function": sym, "library": lib, "calls": m[0], "total_ns": m[1], "p50_ns": hist_quantile(m[2:], 0.5),
             "p99_ns": hist_quantile(m[2:], 0.99)} for (sym, lib), m in sorted(merged.items(), key=lambda kv: -kv[1][1])]


def compute_summary_text(aggs: Iterable[FunctionAggregate]) -> str:
    """The -c compute-block section (``--uprobe``): one row per probed function, merged over processes, by total
    time. Counts are exact (every call, shipped as a ComputeBlock or not); p50/p99 from the log2 histogram."""
    merged: dict[str, list[int]] = {}
    for a in aggs:
        m = merged.setdefault(a.symbol, [0, 0] + [0] * len(a.hist_log2))
        m[0] += a.calls
        m[1] += a.total_ns
        for i, n in enumerate(a.hist_log2):
            m[2 + i] += n
    rows = sorted(merged.items(), key=lambda kv: (-kv[1][1], kv[0]))
    out = io.StringIO()
    out.write("\ncompute blocks (uprobes)\n")
    out.write("     seconds  usecs/call     calls   p50 usecs   p99 usecs function\n")
    out.write("------------ ----------- --------- ----------- ----------- ----------------\n")
    for name, m in rows:
        calls, total, hist = m[0], m[1], m[2:]
        out.write(f"{total / 1e9:12.6f} {total // 1000 // max(calls, 1):11d} {calls:9d} "
                  f"{hist_quantile(hist, 0.5) / 1000:11.1f} {hist_quantile(hist, 0.99) / 1000:11.1f} {name}\n")
    if not rows:
        out.write("(no probed function was called)\n")
    return out.getvalue()


def summary_document(rows: list[SummaryRow], lost: dict[str, int], backend: str, exit_code: int,
                     extra: dict[str, object] | None = None) -> dict[str, object]:
    doc: dict[str, object] = {
        "summary": [{"syscall": r.syscall, "calls": r.calls, "errors": r.errors, "total_ns": r.total_ns,
                     "p50_ns": r.p50_ns, "p99_ns": r.p99_ns} for r in rows],
        "lost_events": sum(lost.values()), "lost_by_source": lost, "backend": backend, "exit_code": exit_code,
    }
    doc.update(extra or {})
    return doc


def summary_csv(rows: list[SummaryRow]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["syscall", "calls", "errors", "total_ns", "p50_ns", "p99_ns"])
    for r in rows:
        w.writerow([r.syscall, r.calls, r.errors, r.total_ns, r.p50_ns, r.p99_ns])
    return out.getvalue()


LAYER_EVENTS = (ComputeBlock, GpuKernel, GpuMemoryTransfer, GpuSample, TranspilerDecision, Mark)


def event_json(ev: LayerEvent) -> str:
    """A compute-block/GPU event as one JSON object: {"event": type, pid, tid, wall_ns, duration_ns, fields...}."""
    doc: dict[str, object] = {"event": type(ev).__name__, "pid": ev.h.pid, "tid": ev.h.tid, "mono_ns": ev.h.mono_ns,
                              "wall_ns": ev.h.wall_ns, "duration_ns": ev.h.duration_ns}
    for f in dataclasses.fields(ev):
        if f.name != "h":
            v = getattr(ev, f.name)
            doc[f.name] = v.name if isinstance(v, enum.Enum) else (list(v) if isinstance(v, tuple) else v)
    return json.dumps(doc, default=str)


def layer_line(ev: LayerEvent, style: LineStyle) -> str:
    """A compute-block/GPU event in the text trace, marked with "~" (not a system call)."""
    prefix = f"[pid {ev.h.tid:>5}] " if style.show_pid else ""
    if isinstance(ev, ComputeBlock):
        args = ", ".join(f"{k}={v!r}" if isinstance(v, bytes) else f"{k}={v}" for k, v in ev.attrs.items())
        what = f"compute {ev.name}({args})"
    elif isinstance(ev, TranspilerDecision):  # SDK, at run time
        what = (f"decision {ev.decision_id} {ev.kind}: {ev.chosen} (over {', '.join(ev.alternatives) or '-'}) "
                f"for {ev.target_symbol or '?'}: {ev.reason}")
    elif isinstance(ev, Mark):
        what = f"mark {ev.name}({', '.join(f'{k}={v!r}' if isinstance(v, bytes) else f'{k}={v}' for k, v in ev.attrs.items())})"
    elif isinstance(ev, GpuKernel):
        what = f"gpu kernel {ev.name} grid={list(ev.grid)} block={list(ev.block)}"
    elif isinstance(ev, GpuMemoryTransfer):
        what = f"gpu memcpy {ev.kind.name} {ev.bytes} bytes"
    else:
        what = (f"gpu sample device={ev.device} pid={ev.process_pid} util={ev.gpu_util_pct}% "
                f"mem={ev.memory_used_bytes} power_mw={ev.power_mw} sm_mhz={ev.sm_clock_mhz}")
    return f"{prefix}~ {what} <{ev.h.duration_ns / 1e9:.6f}>"


def span_json(span: SyscallSpan) -> str:
    return json.dumps({
        "pid": span.h.pid, "tid": span.h.tid, "wall_ns": span.h.wall_ns, "duration_ns": span.h.duration_ns,
        "syscall": span.name, "args": {k: (v.hex() if isinstance(v, bytes) else v) for k, v in span.args.items()},
        "ret": span.ret, "errno": errno_mod.errorcode.get(span.errno) if span.failed else None,
        "payload": span.payload.decode("utf-8", "backslashreplace") if span.payload is not None else None,
        "payload_len": span.payload_len, "reason": span.reason,
    })
