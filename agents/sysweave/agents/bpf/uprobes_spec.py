"""Function probes, the pure half: the ``--uprobe`` grammar, the record layout (from uprobes.h) and the
conversion of records and aggregates into events. No bcc here, so all of it is testable anywhere.

Grammar of one ``--uprobe`` value (repeatable)::

    [LIB:]FUNC[,FUNC...]          FUNC = SYMBOL[(NAME=argK[,NAME=argK...])]     K = 1..6
    [LIB:]/REGEX/[(NAME=argK...)]

``LIB`` is a path (``/usr/lib/x86_64-linux-gnu/libm.so.6``) or a library name resolved, as bcc does, through the
linker cache (``m``, ``libm``, ``c``); without it, the traced program's own executable. A regex is a Python/
POSIX extended regex matched against every function symbol (``/^vec_/``); aliases of one address are probed
once (the first name wins). ``NAME=argK`` keeps the K-th integer argument of each slow call; the first one is
the block's element count (``ComputeBlock.elements``), e.g. ``--uprobe 'libm:cos(n=arg1)'`` — arguments that
are not integers (doubles travel in xmm registers) read as whatever the integer register held.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from functools import cache
from importlib import resources

from sysweave.agents.bpf.contract import Contract, parse_header
from sysweave.schemas.errors import AgentError
from sysweave.schemas.events import ArgValue, CausalStamp, ComputeBlock, EventHeader, FunctionAggregate, make_event_id

__all__ = [
    "FuncSpec", "Probe", "ProbeSpec", "SpecError", "UpCall", "UsdtSpec", "compute_block", "function_aggregate",
    "header_text", "parse_record", "parse_spec", "parse_usdt", "up_contract",
]

HEADER = "uprobes.h"


class SpecError(AgentError, ValueError):
    """A ``--uprobe`` value that does not follow the grammar (the message shows the grammar)."""


@dataclass(frozen=True, slots=True)
class FuncSpec:
    pattern: str  # a symbol, or a regex when ``regex``
    regex: bool = False
    args: tuple[tuple[str, int], ...] = ()  # (name, 0-based argument index)


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    library: str | None  # None: the traced executable
    funcs: tuple[FuncSpec, ...]


@dataclass(frozen=True, slots=True)
class Probe:
    """One attached function: ``pid``-independent identity plus how its records become events."""

    id: int
    library: str  # resolved path
    symbol: str
    address: int
    cls: int  # UP_CLASS_*
    flags: int = 0  # UPF_*
    str_arg: int = 0
    deref_arg: int = 0
    args: tuple[tuple[str, int], ...] = ()
    role: str = "compute"  # "compute", "usdt" (symbol PROVIDER:NAME; hits counted), a CUDA role (cuda_probes.py)


@dataclass(frozen=True, slots=True)
class UpCall:
    """One shipped record: a call of probe ``probe`` that took ``dur`` ns from ``ts`` (CLOCK_MONOTONIC)."""

    pid: int
    tid: int
    probe: int
    ts: int
    dur: int
    ret: int
    deref: int
    args: tuple[int, ...]
    text: str


_GRAMMAR = ("expected [LIB:]SYMBOL[,SYMBOL...] or [LIB:]/REGEX/, each SYMBOL optionally followed by "
            "(NAME=argK,...) with K in 1..6, e.g. 'libm:cos(n=arg1)' or './prog:/^kernel_/'")
_ARG = re.compile(r"^\s*([A-Za-z_]\w*)\s*=\s*arg([1-6])\s*$")
_SYMBOL = re.compile(r"^[A-Za-z_.$@][\w.$@]*$")


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _args(spec: str, text: str) -> tuple[tuple[str, int], ...]:
    out = []
    for part in text.split(","):
        m = _ARG.match(part)
        if not m:
            raise SpecError(f"--uprobe {spec!r}: bad argument capture {part.strip()!r}: {_GRAMMAR}")
        out.append((m.group(1), int(m.group(2)) - 1))
    return tuple(out)


def _func(spec: str, text: str, regex: bool) -> FuncSpec:
    text = text.strip()
    args: tuple[tuple[str, int], ...] = ()
    if text.endswith(")") and "(" in text:
        head, _, inner = text[:-1].rpartition("(")
        if not regex or head.endswith("/"):
            text, args = head.strip(), _args(spec, inner)
    if regex:
        if len(text) < 3 or not (text.startswith("/") and text.endswith("/")):
            raise SpecError(f"--uprobe {spec!r}: {_GRAMMAR}")
        pattern = text[1:-1]
        try:
            re.compile(pattern)
        except re.error as exc:
            raise SpecError(f"--uprobe {spec!r}: bad regex /{pattern}/: {exc}") from exc
        return FuncSpec(pattern, True, args)
    if not _SYMBOL.match(text):
        raise SpecError(f"--uprobe {spec!r}: {text!r} is not a symbol name: {_GRAMMAR}")
    return FuncSpec(text, False, args)


def parse_spec(spec: str) -> ProbeSpec:
    """``'libm:cos(n=arg1),sin'`` -> ProbeSpec('libm', (FuncSpec('cos', args=(('n', 0),)), FuncSpec('sin')))."""
    text = spec.strip()
    lib: str | None = None
    colon = text.find(":")
    paren = text.find("(")
    if colon > 0 and (paren < 0 or colon < paren):
        lib, text = text[:colon].strip(), text[colon + 1:].strip()
    if not text:
        raise SpecError(f"--uprobe {spec!r}: no function named: {_GRAMMAR}")
    if text.startswith("/"):
        return ProbeSpec(lib, (_func(spec, text, True),))
    return ProbeSpec(lib, tuple(_func(spec, part, False) for part in _split_top(text)))


@dataclass(frozen=True, slots=True)
class UsdtSpec:
    """One ``--usdt [LIB:]PROVIDER:NAME``: a static probe (sys/sdt.h) of a binary or library."""

    library: str | None  # None: the traced executable
    provider: str
    name: str


_USDT_GRAMMAR = ("expected [LIB:]PROVIDER:NAME, e.g. 'python:gc__start' (the traced program) or "
                 "'/usr/bin/python3.11:python:function__entry'")
_IDENT = re.compile(r"^[A-Za-z_]\w*$")


def parse_usdt(spec: str) -> UsdtSpec:
    """``'libc:libc:setjmp'`` -> UsdtSpec('libc', 'libc', 'setjmp'); ``'python:gc__start'`` -> (None, ...)."""
    lib, _, rest = spec.strip().rpartition(":")
    lib, _, provider = lib.rpartition(":")
    if not (_IDENT.match(provider) and _IDENT.match(rest)) or (_ and not lib):
        raise SpecError(f"--usdt {spec!r}: {_USDT_GRAMMAR}")
    return UsdtSpec(lib or None, provider, rest)


# --- the record layout, from uprobes.h -------------------------------------------------------------------

def header_text() -> str:
    return resources.files("sysweave.agents.bpf").joinpath(HEADER).read_text()


@cache
def up_contract() -> Contract:
    return parse_header(header_text())


@cache
def _record_struct() -> tuple[struct.Struct, tuple[str, ...]]:
    return up_contract().fixed_prefix("up_rec")


def parse_record(data: bytes) -> UpCall:
    """Decode one ``struct up_rec`` (layout derived from uprobes.h)."""
    st, names = _record_struct()
    if len(data) < st.size:
        raise ValueError(f"uprobe record of {len(data)} bytes is shorter than struct up_rec ({st.size})")
    v = dict(zip(names, st.unpack_from(data)))
    n_args = up_contract()["UP_ARGS"]
    raw = v["str"][: min(v["str_len"], len(v["str"]))]
    text = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    return UpCall(v["pid"], v["tid"], v["probe"], v["ts"], v["dur"], v["ret"], v["deref"],
                  tuple(v[f"args{i}"] for i in range(n_args)), text)


# --- records and aggregates -> events ----------------------------------------------------------------------

def compute_block(call: UpCall, probe: Probe, host_id: str, producer_id: int, seq: int, wall_offset_ns: int) -> ComputeBlock:
    """A slow call of a compute probe as a ComputeBlock on its thread (source "uprobe")."""
    h = EventHeader(make_event_id(producer_id, seq), host_id, call.pid, call.tid, call.ts, call.ts + wall_offset_ns,
                    call.dur, CausalStamp(seq, 0))
    elements = call.args[probe.args[0][1]] if probe.args else 0
    attrs: dict[str, ArgValue] = {name: call.args[i] for name, i in probe.args}
    return ComputeBlock(h, probe.symbol, elements=elements, symbol=probe.symbol, source="uprobe", attrs=attrs)


def function_aggregate(probe: Probe, pid: int, calls: int, total_ns: int, hist: list[int], window: tuple[int, int],
                       host_id: str, event_id: bytes, wall_offset_ns: int) -> FunctionAggregate:
    start, end = window
    h = EventHeader(event_id, host_id, pid, pid, start, start + wall_offset_ns, end - start)
    return FunctionAggregate(h, probe.symbol, probe.library, calls, total_ns, tuple(hist),
                             "usdt" if probe.role == "usdt" else "uprobe")


def captured_args(call: UpCall, probe: Probe) -> dict[str, int]:
    """The named arguments of a shipped call, e.g. {'n': 4096}."""
    return {name: call.args[i] for name, i in probe.args}
