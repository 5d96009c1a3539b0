"""Semantic equivalence of two runs' Obs (pure): verdict, first divergence, plain-language explanation.

Checks run in a fixed order and the first divergence is reported: exit status, stdout, stderr, files
(aligned with a Myers diff over per-file operation sequences, then contents), files read, network
connections (aligned the same way, then bytes per direction), listening sockets, child processes
(argv and exit code, aligned by role: creation order under each parent).

``tolerance`` (default 0.05) applies only to counts of operations whose content matches: how many
times each input file was opened. Never to content, paths, argv or exit codes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sysweave.validator.equivalence.myers import diff
from sysweave.validator.equivalence.observe import ConnObs, Obs, ProcObs


@dataclass
class Divergence:
    resource: str  # "exit", "stdout", "stderr", "file:./out.txt", "files", "reads", "connections", "processes"
    kind: str  # "missing", "extra", "content", "operations", "value", "count"
    original: Any
    transpiled: Any
    index_original: int | None = None
    index_transpiled: int | None = None
    context_original: list[Any] = field(default_factory=list)
    context_transpiled: list[Any] = field(default_factory=list)


@dataclass
class Verdict:
    verdict: str  # "equivalent" | "divergent"
    confidence: float
    explanation: str
    divergence: Divergence | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return _jsonable(d)  # type: ignore[no-any-return]


def _jsonable(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "backslashreplace")
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _show(b: bytes, limit: int = 24) -> str:
    s = b[:limit].decode("utf-8", "backslashreplace")
    return repr(s) if len(b) <= limit else repr(s) + "..."


def compare_bytes(name: str, a: bytes, b: bytes) -> Divergence | None:
    if a == b:
        return None
    i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
    ctx = max(0, i - 16)
    return Divergence(name, "content", a[i:i + 24], b[i:i + 24], i, i, [a[ctx:i]], [b[ctx:i]])


def explain_bytes(d: Divergence, what: str) -> str:
    i = d.index_original or 0
    a, b = d.original, d.transpiled
    if not a:
        return f"{what} of the original ends after {i} bytes; the transpiled run writes more: {_show(b)}"
    if not b:
        return f"{what} of the transpiled run ends after {i} bytes; the original continues with {_show(a)}"
    return f"byte {i} of {what} differs: {_show(a)} vs {_show(b)}"


def _first(steps: list[tuple[str, int, int]]) -> tuple[str, int, int] | None:
    return next((s for s in steps if s[0] != "equal"), None)


def _ctx(seq: Sequence[Any], i: int, n: int = 3) -> list[Any]:
    return list(seq[max(0, i - n):i + n + 1])


def align(resource: str, xs: Sequence[Any], ys: Sequence[Any], missing: Callable[[Any], str],
          extra: Callable[[Any], str]) -> tuple[Divergence | None, str]:
    """Myers-align two sequences of resources; the first one only one side has, explained."""
    step = _first(diff(xs, ys))
    if step is None:
        return None, ""
    op, i, j = step
    if op == "delete":
        return Divergence(resource, "missing", xs[i], None, i, j, _ctx(xs, i), _ctx(ys, j)), missing(xs[i])
    return Divergence(resource, "extra", None, ys[j], i, j, _ctx(xs, i), _ctx(ys, j)), extra(ys[j])


def compare_files(a: Obs, b: Obs) -> tuple[Divergence | None, str]:
    # align on the set of paths first (order of first touch may differ for independent files)
    pa, pb = sorted(a.files), sorted(b.files)
    d, why = align("files", pa, pb,
                   lambda p: f"the transpiled run never touches {p} (the original {' / '.join(a.files[p].ops) or 'opens it'})",
                   lambda p: f"the transpiled run also touches {p} ({' / '.join(b.files[p].ops)}), which the original does not")
    if d:
        return d, why
    for path in pa:
        x, y = a.files[path], b.files[path]
        s = _first(diff(x.ops, y.ops))
        if s:
            op, i, j = s
            what_a = x.ops[i] if op == "delete" else (x.ops[i] if i < len(x.ops) else "nothing more")
            what_b = y.ops[j] if op == "insert" else (y.ops[j] if j < len(y.ops) else "nothing more")
            return (Divergence(f"file:{path}", "operations", what_a, what_b, i, j, _ctx(x.ops, i), _ctx(y.ops, j)),
                    f"{path}: operation {i} is {what_a!r} in the original but {what_b!r} in the transpiled run")
        if x.content != y.content:
            if x.content is None or y.content is None:
                gone = "transpiled" if y.content is None else "original"
                return (Divergence(f"file:{path}", "missing", x.content, y.content),
                        f"{path} exists at the end of one run only (absent after the {gone} run)")
            d = compare_bytes(f"file:{path}", x.content, y.content)
            assert d is not None
            return d, explain_bytes(d, f"{path}")
    return None, ""


def compare_connections(a: list[ConnObs], b: list[ConnObs]) -> tuple[Divergence | None, str]:
    d, why = align("connections", [(c.kind, c.remote) for c in a], [(c.kind, c.remote) for c in b],
                   lambda k: f"the transpiled run never connects to {k[1]} ({k[0]})",
                   lambda k: f"the transpiled run also connects to {k[1]} ({k[0]})")
    if d:
        return d, why
    for n, (x, y) in enumerate(zip(a, b)):
        for direction in ("sent", "received"):
            d = compare_bytes(f"connection {n} to {x.remote} ({direction})", bytes(getattr(x, direction)),
                              bytes(getattr(y, direction)))
            if d:
                return d, explain_bytes(d, d.resource)
    return None, ""


def _proc_key(p: ProcObs) -> tuple[tuple[str, ...], int | None, int | None]:
    return p.argv, p.exit_code, p.signal


def compare_processes(a: ProcObs | None, b: ProcObs | None, path: str = "root") -> tuple[Divergence | None, str]:
    """Children aligned by role (argv + exit status) in creation order, recursively."""
    if a is None or b is None:
        return None, ""
    ka, kb = [_proc_key(c) for c in a.children], [_proc_key(c) for c in b.children]
    step = _first(diff(ka, kb))
    if step:
        op, i, j = step
        if op == "delete":
            c = a.children[i]
            instead = ""
            if j < len(b.children):
                other = b.children[j]
                instead = f" (it starts {' '.join(other.argv)!r}, exit {other.exit_code})"
            return (Divergence("processes", "missing", list(c.argv), None, i, j),
                    f"under {path}, the original starts {' '.join(c.argv)!r} (exit {c.exit_code}); "
                    f"the transpiled run does not{instead}")
        c = b.children[j]
        return (Divergence("processes", "extra", None, list(c.argv), i, j),
                f"under {path}, the transpiled run starts {' '.join(c.argv)!r} (exit {c.exit_code}), which the original does not")
    for x, y in zip(a.children, b.children):
        d, why = compare_processes(x, y, f"{path}/{' '.join(x.argv[:1])}")
        if d:
            return d, why
    return None, ""


def compare(a: Obs, b: Obs, tolerance: float = 0.05) -> Verdict:
    notes: list[str] = []
    confidence = 1.0
    if a.lost_events or b.lost_events:
        confidence = min(confidence, 0.5)
        notes.append(f"events were lost while tracing ({a.lost_events} original, {b.lost_events} transpiled)")
    if any(c.truncated for c in a.connections + b.connections):
        confidence = min(confidence, 0.8)
        notes.append("some socket/pipe payloads exceeded the capture size; compared the captured prefix")

    def divergent(d: Divergence, why: str) -> Verdict:
        return Verdict("divergent", confidence, why, d, notes)

    if a.exit_code != b.exit_code:
        return divergent(Divergence("exit", "value", a.exit_code, b.exit_code), f"exit code {a.exit_code} vs {b.exit_code}")
    for name, x, y in (("stdout", a.stdout, b.stdout), ("stderr", a.stderr, b.stderr)):
        d = compare_bytes(name, x, y)
        if d:
            return divergent(d, explain_bytes(d, name))
    for d, why in (compare_files(a, b), compare_connections(a.connections, b.connections),
                   compare_processes(a.root, b.root)):
        if d:
            return divergent(d, why)
    if a.edges or b.edges:
        d, why = align("edges", sorted(set(a.edges)), sorted(set(b.edges)),
                       lambda e: f"in the original, {e[1]!r} sends data to {e[2]!r} over a {e[0].lower()}; "
                                 f"the transpiled run has no such flow",
                       lambda e: f"in the transpiled run, {e[1]!r} sends data to {e[2]!r} over a {e[0].lower()}; "
                                 f"the original has no such flow")
        if d:
            return divergent(d, why)
    ra, rb = sorted(a.reads), sorted(b.reads)
    d, why = align("reads", ra, rb, lambda p: f"only the original reads {p}", lambda p: f"only the transpiled run reads {p}")
    if d:
        return divergent(d, why)
    if sorted(a.listening) != sorted(b.listening):
        return divergent(Divergence("listening", "value", sorted(a.listening), sorted(b.listening)),
                         f"listening sockets differ: {sorted(a.listening)} vs {sorted(b.listening)}")
    for path in ra:
        na, nb = a.reads[path], b.reads[path]
        if abs(na - nb) > tolerance * max(na, nb):
            return divergent(Divergence(f"file:{path}", "count", na, nb),
                             f"{path} is opened {na} times by the original and {nb} times by the transpiled run "
                             f"(more than the {tolerance:.0%} tolerance)")
        if na != nb:
            notes.append(f"{path}: opened {na} vs {nb} times (within tolerance)")
    return Verdict("equivalent", confidence, "the two runs are observably equivalent", None, notes)
