"""Equivalence of two runs' effects (pure): verdict, first divergence in happens-before order, symptoms,
and a confidence derived from the evidence (docs/equivalence.md).

Every difference is found (:func:`differences`): exit status, stdout/stderr, the final state of every file
in scope, network conversations by endpoint, listening endpoints, visible programs (matched by role) and
input files. Each carries the :class:`~.observe.Origin` of the effect where it began; the earliest in
happens-before order is the divergence, the rest its downstream symptoms.

    >>> from sysweave.validator.equivalence.observe import Obs, StreamObs
    >>> a, b = Obs(exit_code=0), Obs(exit_code=0)
    >>> a.streams["stdout"], b.streams["stdout"] = StreamObs(b"3\\n", 2), StreamObs(b"4\\n", 2)
    >>> v = compare(a, b)
    >>> v.verdict, v.explanation, v.confidence
    ('divergent', "byte 0 of stdout differs: '3\\\\n' vs '4\\\\n'", 1.0)
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sysweave.validator.equivalence.excerpt import excerpt, show_bytes, where
from sysweave.validator.equivalence.filestate import FileEffect
from sysweave.validator.equivalence.myers import diff
from sysweave.validator.equivalence.observe import Conversation, Obs, Origin, StreamObs
from sysweave.validator.equivalence.processes import ProgramNode

__all__ = ["Divergence", "Verdict", "compare", "compare_bytes", "differences", "evidence"]


@dataclass
class Divergence:
    resource: str  # "exit", "stdout", "file:./out.txt", "conversation:stream 10.0.0.2:7000", "processes", "reads"
    kind: str  # "missing", "extra", "content", "value", "mode", "type"
    original: Any
    transpiled: Any
    index_original: int | None = None
    index_transpiled: int | None = None
    context_original: list[Any] = field(default_factory=list)
    context_transpiled: list[Any] = field(default_factory=list)
    explanation: str = ""
    host: str = ""
    role: str = ""  # the argv of the process where the difference began
    order: float = 1.0  # happens-before position of its origin, in [0, 1]


@dataclass
class Verdict:
    verdict: str  # "equivalent" | "divergent"
    confidence: float
    explanation: str
    divergence: Divergence | None = None
    notes: list[str] = field(default_factory=list)
    symptoms: list[Divergence] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = _jsonable(asdict(self))  # a dict in, a dict out
        return doc


def _jsonable(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "backslashreplace")
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def compare_bytes(name: str, a: bytes, b: bytes) -> Divergence | None:
    if a == b:
        return None
    n = min(len(a), len(b))
    i = next((k for k in range(n) if a[k] != b[k]), n)
    ctx = max(0, i - 16)
    d = Divergence(name, "content", a[i:i + 24], b[i:i + 24], i, i, [a[ctx:i]], [b[ctx:i]])
    what = name.split(":", 1)[1] if name.startswith("file:") else name
    if not d.original:
        d.explanation = f"{what} of the original ends after {i} bytes; the transpiled run writes more: {show_bytes(d.transpiled)}"
    elif not d.transpiled:
        d.explanation = f"{what} of the transpiled run ends after {i} bytes; the original continues with {show_bytes(d.original)}"
    else:
        d.explanation = f"byte {i} of {what} differs{where(a, i)}: {excerpt(a, i)} vs {excerpt(b, i)}"
    return d


def _prefix_bytes(name: str, a: bytes, b: bytes, gap_a: int | None, gap_b: int | None, total_a: int,
                  total_b: int) -> Divergence | None:
    """Compare two byte streams whose captured bytes may stop being contiguous (a capped payload): the
    bytes up to the first gap, then the lengths."""
    gaps = [g for g in (gap_a, gap_b) if g is not None]
    if not gaps:
        return compare_bytes(name, a, b)
    limit = min(gaps)
    d = compare_bytes(name, a[:limit], b[:limit])
    if d is None and total_a != total_b:
        d = Divergence(name, "length", total_a, total_b, limit, limit,
                       explanation=f"{name}: {total_a:,} vs {total_b:,} bytes (compared byte by byte up to "
                                   f"{limit:,}, where capture stopped being complete)")
    return d


def _at(writes: Sequence[tuple[int, Origin]], offset: int) -> Origin | None:
    """The origin of the write that carried byte ``offset`` (the last write, if it lies beyond)."""
    for end, o in writes:
        if end > offset:
            return o
    return writes[-1][1] if writes else None


class _Differ:
    def __init__(self, a: Obs, b: Obs) -> None:
        self.a, self.b = a, b
        self.out: list[Divergence] = []
        self.unknown_files = 0

    def add(self, d: Divergence, origin: Origin | None, side: Obs | None = None) -> None:
        side = side or self.a
        if origin is not None:
            d.host, d.order = origin.host, origin.order
            d.role = side.roles.get((origin.host, origin.pid), "")
        if len(side.hosts) > 1 and d.host:  # multi-host: say where it began, by host and process role
            who = f", {d.role!r}" if d.role else ""
            d.explanation = f"on host {d.host}{who}: " + d.explanation.replace(f"{d.host}: ", "")
        self.out.append(d)

    def exits(self) -> None:
        a, b = self.a, self.b
        if (a.exit_code, a.exit_signal) != (b.exit_code, b.exit_signal):
            self.add(Divergence("exit", "value", _status(a.exit_code, a.exit_signal), _status(b.exit_code, b.exit_signal),
                                explanation=f"exit code {a.exit_code} vs {b.exit_code}"
                                if a.exit_signal is None and b.exit_signal is None else
                                f"{_status(a.exit_code, a.exit_signal)} vs {_status(b.exit_code, b.exit_signal)}"),
                     a.exit_origin)
        if len(a.host_exits) > 1 or len(b.host_exits) > 1:
            for host in sorted(set(a.host_exits) | set(b.host_exits)):
                x, y = a.host_exits.get(host), b.host_exits.get(host)
                if x != y:
                    self.add(Divergence(f"exit:{host}", "value", x, y, explanation=f"on host {host}, exit code {x} vs {y}"),
                             Origin(host, 0, 1.0))

    def streams(self) -> None:
        for name in sorted(set(self.a.streams) | set(self.b.streams)):
            x, y = self.a.streams.get(name, StreamObs()), self.b.streams.get(name, StreamObs())
            d = _prefix_bytes(name, x.data, y.data, x.gap, y.gap, x.total, y.total)
            if d:
                i = d.index_original or 0
                o = _at(x.writes, i) or _at(y.writes, i)
                self.add(d, o, self.a if _at(x.writes, i) else self.b)

    def files(self) -> None:
        absent = FileEffect("", False)
        for path in sorted(set(self.a.files) | set(self.b.files)):
            x, y = self.a.files.get(path, absent), self.b.files.get(path, absent)
            if not x.known or not y.known:
                self.unknown_files += 1
                continue
            side = self.a if path in self.a.files else self.b
            origin = x.origin if path in self.a.files else y.origin
            res = f"file:{path}"
            if x.exists != y.exists:
                who = "original" if x.exists else "transpiled run"
                live = x if x.exists else y
                self.add(Divergence(res, "missing" if x.exists else "extra", x.describe(), y.describe(),
                                    explanation=f"{path} exists at the end of the {who} only ({live.describe()})"),
                         origin, side)
            elif not x.exists:
                continue
            elif x.type != y.type or x.target != y.target:
                self.add(Divergence(res, "type", x.describe(), y.describe(),
                                    explanation=f"{path} is a {x.describe()} in the original but a {y.describe()} "
                                                f"in the transpiled run"), origin, side)
            elif x.mode != y.mode:
                self.add(Divergence(res, "mode", x.mode, y.mode,
                                    explanation=f"{path} has mode {x.mode or 0:04o} in the original but "
                                                f"{y.mode or 0:04o} in the transpiled run"), origin, side)
            elif x.type == "file" and (x.digest != y.digest or (x.digest is None and x.content != y.content)):
                d = compare_bytes(res, x.content or b"", y.content or b"")
                if d is None:  # the differing bytes lie beyond the kept prefix: the digests tell
                    d = Divergence(res, "content", x.size, y.size,
                                   explanation=f"{path} differs after its first {len(x.content or b''):,} bytes "
                                               f"({x.size:,} vs {y.size:,} bytes; content digests differ)")
                elif x.size != y.size:
                    d.explanation += f" ({x.size:,} vs {y.size:,} bytes)"
                self.add(d, origin, side)

    def conversations(self) -> None:
        for ep in sorted(set(self.a.conversations) | set(self.b.conversations)):
            xs, ys = self.a.conversations.get(ep, []), self.b.conversations.get(ep, [])
            for n in range(max(len(xs), len(ys))):
                x, y = (xs[n] if n < len(xs) else None), (ys[n] if n < len(ys) else None)
                res = f"conversation:{ep}" + (f" #{n + 1}" if max(len(xs), len(ys)) > 1 else "")
                if x is None or y is None:
                    c = x or y
                    assert c is not None
                    who = "original" if x else "transpiled run"
                    what = ep.rsplit(": ", 1)[-1].split(" ", 1)[-1]  # without the host and the kind
                    how = f"exchanges datagrams {what}" if c.kind == "datagram" else (
                        f"has a connection {what}" if what.startswith("accepted") else f"connects to {what}")
                    self.add(Divergence(res, "missing" if x else "extra", ep if x else None, ep if y else None,
                                        explanation=f"only the {who} {how}"),
                             c.origin, self.a if x else self.b)
                    continue
                self._conversation(res, ep, x, y)

    def _conversation(self, res: str, ep: str, x: Conversation, y: Conversation) -> None:
        if x.kind == "datagram" or y.kind == "datagram":
            step = next((s for s in diff(x.messages, y.messages) if s[0] != "equal"), None)
            if step:
                _, i, j = step
                mx = x.messages[i] if i < len(x.messages) else None
                my = y.messages[j] if j < len(y.messages) else None
                o = x.ios[min(i, len(x.ios) - 1)][2] if x.ios else x.origin
                self.add(Divergence(res, "content", mx, my, i, j,
                                    explanation=f"{ep}: datagram {i} is {_msg(mx)} in the original but {_msg(my)} "
                                                f"in the transpiled run"), o)
            return
        for direction in ("sent", "received"):
            d = _prefix_bytes(f"{res} ({direction})", bytes(getattr(x, direction)), bytes(getattr(y, direction)),
                              x.gaps.get(direction), y.gaps.get(direction), x.totals.get(direction, 0),
                              y.totals.get(direction, 0))
            if d:
                i = d.index_original or 0
                ios = [(end, o) for dr, end, o in x.ios if dr == direction]
                self.add(d, _at(ios, i) or x.origin)
                return

    def _one_sided(self, resource: str, a: dict[str, Origin], b: dict[str, Origin], verb: str) -> None:
        """Keys only one run has (endpoints it listens on, files it reads): one divergence each."""
        for key in sorted(set(a) ^ set(b)):
            who = "original" if key in a else "transpiled run"
            self.add(Divergence(resource, "missing" if key in a else "extra", key, None,
                                explanation=f"only the {who} {verb} {key}"), a.get(key) or b.get(key))

    def listening(self) -> None:
        self._one_sided("listening", self.a.listening, self.b.listening, "listens on")

    def programs(self, x: ProgramNode | None, y: ProgramNode | None, where: str = "") -> None:
        if x is None or y is None:
            return
        if x.role == ("<hosts>",) or y.role == ("<hosts>",):  # multi-host: each host's program, paired by host
            xs, ys = {c.key[0]: c for c in x.children}, {c.key[0]: c for c in y.children}
            for host in sorted(set(xs) & set(ys)):
                self.programs(xs[host], ys[host], f"host {host}")
            return
        kx = sorted(((c.role, c.exit_code, c.signal), n) for n, c in enumerate(x.children))
        ky = sorted(((c.role, c.exit_code, c.signal), n) for n, c in enumerate(y.children))
        under = f"under {where}, " if where else ""
        for op, i, j in diff([k for k, _ in kx], [k for k, _ in ky]):
            if op == "equal":
                self.programs(x.children[kx[i][1]], y.children[ky[j][1]], " ".join(kx[i][0][0]))
            elif op == "delete":
                c = x.children[kx[i][1]]
                self.add(Divergence("processes", "missing", list(c.role), None, i, j,
                                    explanation=f"{under}the original starts {' '.join(c.role)!r} "
                                                f"({_status(c.exit_code, c.signal)}); "
                                                f"the transpiled run does not"), self._origin(self.a, c))
            else:
                c = y.children[ky[j][1]]
                self.add(Divergence("processes", "extra", None, list(c.role), i, j,
                                    explanation=f"{under}the transpiled run starts {' '.join(c.role)!r} "
                                                f"({_status(c.exit_code, c.signal)}), which the original does not"),
                         self._origin(self.b, c), self.b)

    @staticmethod
    def _origin(side: Obs, node: ProgramNode) -> Origin:
        return side.process_origins.get(node.key) or Origin(node.key[0], node.key[1], 0.5)

    def reads(self) -> None:
        self._one_sided("reads", self.a.reads, self.b.reads, "reads")


def _status(code: int | None, sig: int | None) -> str:
    """'exit code 3', 'killed by SIGTERM'."""
    if sig is not None:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"killed by {name}"
    return f"exit code {code}"


def _msg(m: tuple[str, bytes] | None) -> str:
    return "nothing" if m is None else f"{m[0]} {show_bytes(m[1])}"


def differences(a: Obs, b: Obs) -> tuple[list[Divergence], int]:
    """Every difference, in happens-before order of where it began; and how many files could not be compared."""
    d = _Differ(a, b)
    d.exits()
    d.streams()
    d.files()
    d.conversations()
    d.listening()
    d.programs(a.programs, b.programs)
    d.reads()
    d.out.sort(key=lambda x: x.order)  # stable: at equal positions, the check order above
    return d.out, d.unknown_files


def evidence(a: Obs, b: Obs, unknown_files: int = 0) -> dict[str, Any]:
    """What was compared, what could not be, and the confidence factors it implies (docs/equivalence.md)."""
    convs = [c for o in (a, b) for cs in o.conversations.values() for c in cs]
    streams = [s for o in (a, b) for s in o.streams.values()]
    total = sum(c.total for c in convs) + sum(max(s.total, len(s.data)) for s in streams)
    captured = sum(c.captured for c in convs) + sum(len(s.data) for s in streams)
    events, lost = a.events + b.events, a.lost_events + b.lost_events
    masked = (a.masked_bytes, b.masked_bytes)
    files = len(set(a.files) | set(b.files))
    out_bytes = sum(len(s.data) for s in streams) + sum(len(f.content or b"") for o in (a, b) for f in o.files.values())
    factors = {
        "lost_events": 1 - lost / (events + lost) if events + lost else 1.0,
        "truncated_payloads": captured / total if total else 1.0,
        "masked": 1 - sum(masked) / (out_bytes + sum(masked)) if sum(masked) else 1.0,
        "unknown_files": 1 - unknown_files / files if files else 1.0,
    }
    return {
        "events": [a.events, b.events], "lost_events": [a.lost_events, b.lost_events],
        "files_compared": files - unknown_files, "files_unknown": unknown_files,
        "stream_bytes": [sum(len(s.data) for s in o.streams.values()) for o in (a, b)],
        "conversations": [sum(len(v) for v in o.conversations.values()) for o in (a, b)],
        "payload_bytes": {"captured": captured, "moved": total},
        "masked_bytes": list(masked), "programs": [_count(a.programs), _count(b.programs)],
        "input_files": [len(a.reads), len(b.reads)], "factors": factors,
    }


def _count(n: ProgramNode | None) -> int:
    return 0 if n is None else len(n.children) + sum(_count(c) for c in n.children)


def compare(a: Obs, b: Obs, tolerance: float = 0.0) -> Verdict:
    """The verdict on two runs' effects (confidence: see :func:`evidence`).
    ``tolerance`` is accepted for compatibility and unused: open counts are not effects."""
    del tolerance
    diffs, unknown = differences(a, b)
    ev = evidence(a, b, unknown)
    f = ev["factors"]
    notes = []
    if a.lost_events or b.lost_events:
        notes.append(f"events were lost while tracing ({a.lost_events} original, {b.lost_events} transpiled)")
    if f["truncated_payloads"] < 1:
        notes.append("some payloads exceeded the capture size; compared their captured prefix")
    if unknown:
        notes.append(f"{unknown} file(s) in scope have no recorded final state; not compared")
    if diffs:
        first = diffs[0]
        conf = round(f["lost_events"], 4)
        return Verdict("divergent", conf, first.explanation, first, notes, diffs[1:], ev)
    conf = round(f["lost_events"] * f["truncated_payloads"] * f["masked"] * f["unknown_files"], 4)
    return Verdict("equivalent", conf, "the two runs have the same effects", None, notes, [], ev)
