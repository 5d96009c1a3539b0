"""The pipe model (issue 17.5): a connection fed by splice/tee out of a pipe gets the exact bytes the pipe held;
where they cannot be known the answer is "could not decide", never a verdict by length."""

from __future__ import annotations

from collections import deque

from hypothesis import given
from hypothesis import strategies as st

from sysweave.schemas.events import EventHeader, ProcessEvent, ProcessEventType, SyscallSpan
from sysweave.validator.equivalence.compare import compare
from sysweave.validator.equivalence.evidence import comparison_gaps
from sysweave.validator.equivalence.filestate import FileEffect
from sysweave.validator.equivalence.observe import extract
from sysweave.validator.equivalence.pipes import FileRange, PipeModel, Slice, Unknown, no_files

# one pipe's life: ("w", bytes) a write, ("r", n) a read or splice out, ("t", n) a tee (copy of the head)
Op = tuple[str, bytes | int]


@st.composite
def pipe_lives(draw: st.DrawFn) -> list[Op]:
    """Writes and consumptions a real pipe allows (a consumer never takes more than is in the pipe)."""
    ops: list[Op] = []
    held = 0
    for _ in range(draw(st.integers(1, 25))):
        if held and draw(st.booleans()):
            ops.append((draw(st.sampled_from("rt")), draw(st.integers(1, held))))
            held -= ops[-1][1] if ops[-1][0] == "r" else 0  # type: ignore[operator]
        else:
            data = draw(st.binary(min_size=1, max_size=12))
            ops.append(("w", data))
            held += len(data)
    return ops


def _reference(ops: list[Op]) -> list[bytes]:
    """What each consumption gets from a real FIFO, in one global order."""
    fifo: deque[int] = deque()
    got = []
    for kind, x in ops:
        if kind == "w":
            fifo.extend(x)  # type: ignore[arg-type]
        else:
            n = int(x)  # type: ignore[call-overload]
            got.append(bytes(list(fifo)[:n]))
            if kind == "r":
                for _ in range(n):
                    fifo.popleft()
    return got


@given(pipe_lives(), st.randoms(use_true_random=False))
def test_consumers_get_the_fifo_bytes_in_any_interleaving(ops: list[Op], rnd: object) -> None:
    """Writers and consumers are ordered only among themselves (a blocked reader's call starts before the write
    that wakes it): the model must give the same bytes however the two sequences interleave."""
    writes = [o for o in ops if o[0] == "w"]
    takes = [o for o in ops if o[0] != "w"]
    merged: list[Op] = []
    w = t = 0
    while w < len(writes) or t < len(takes):  # a random interleaving keeping each side's order
        if t == len(takes) or (w < len(writes) and rnd.random() < 0.5):  # type: ignore[attr-defined]
            merged.append(writes[w])
            w += 1
        else:
            merged.append(takes[t])
            t += 1
    m = PipeModel()
    slices = []
    for kind, x in merged:
        if kind == "w":
            m.put(1, x)  # type: ignore[arg-type]
        else:
            slices.append(m.take(1, int(x), consume=kind == "r"))  # type: ignore[call-overload]
    assert [m.resolve(s, no_files) for s in slices] == [(b, None) for b in _reference(ops)]


@given(st.binary(min_size=1, max_size=20), st.integers(0, 19), st.integers(1, 30))
def test_unknown_bytes_give_the_known_prefix_and_why(data: bytes, cut: int, n: int) -> None:
    cut = min(cut, len(data))
    m = PipeModel()
    m.put(1, data[:cut])
    m.put(1, Unknown(len(data) - cut, "capped"))
    got, why = m.resolve(m.take(1, n), no_files)
    if n <= cut:
        assert (got, why) == (data[:n], None)
    elif n <= len(data):
        assert (got, why) == (data[:cut], "capped")
    else:
        assert got == data[:cut] and why is not None


def test_pipe_to_pipe_chains_and_file_ranges() -> None:
    m = PipeModel()
    m.put(1, FileRange("h", "/w/data", 2, 7))
    m.put(1, b"!")
    m.put(2, m.take(1, 6, consume=False))  # tee 1 -> 2
    m.put(3, m.take(2, 6))  # splice 2 -> 3

    def files(host: str, path: str, a: int, b: int) -> bytes | str:
        return b"hello world"[a:b]
    assert m.resolve(m.take(3, 6), files) == (b"llo w!", None)
    assert m.resolve(m.take(1, 6), files) == (b"llo w!", None)  # tee left pipe 1's bytes in it
    assert m.resolve(Slice(9, 0, 3), files)[1] is not None  # a pipe the tree never wrote


# --- the extraction: real call shapes, as the capture decodes them ---
def _h(i: int, pid: int = 10) -> EventHeader:
    return EventHeader(i.to_bytes(16, "big"), "h", pid, pid, i, i)


def _spliced(msg: bytes, *, reader_first: bool = False, offset_after: int | None = 7,
             from_stdin: bool = False) -> list[object]:
    """prog: connect fd 3 to 127.0.0.1:7000, pipe (4, 5); write ``msg`` into it; splice data 2..7 of ./data
    (fd 6) into it; splice all out to the socket. ``reader_first``: the splice out started before the write
    (a blocked reader). ``from_stdin``: the pipe is fed from fd 0 instead (written outside the tree)."""
    def call(i: int, name: str, ret: int, args: dict[str, object], payload: bytes | None = None) -> SyscallSpan:
        return SyscallSpan(_h(i), 0, name, ret, args, payload, len(payload) if payload else 0)
    file_args: dict[str, object] = {"arg0": 0 if from_stdin else 6, "arg1": 0, "arg2": 5, "arg3": 0, "arg4": 5}
    if offset_after is not None:
        file_args["offset_after"] = offset_after
    n = len(msg) + 5
    out = call(20 if reader_first else 60, "splice", n, {"arg0": 4, "arg1": 0, "arg2": 3, "arg3": 0, "arg4": n})
    return sorted([ProcessEvent(_h(1), ProcessEventType.EXEC, filename="/usr/bin/prog", argv=("prog",)),
                   call(2, "socket", 3, {"domain": 2, "type": 1, "protocol": 0}),
                   call(3, "connect", 0, {"fd": 3, "addr": "127.0.0.1:7000"}),
                   call(4, "pipe2", 0, {"pipefd": (4, 5), "flags": 0}),
                   call(5, "openat", 6, {"dirfd": -100, "path": "data", "flags": 0}),
                   call(30, "write", len(msg), {"fd": 5}, msg),
                   call(40, "splice", 5, file_args), out],
                  key=lambda e: e.h.mono_ns)


def _state(path: str) -> FileEffect:
    return FileEffect(path, True, "file", 0o644, 11, "d", b"hello world")


def _obs(evs: list[object]):  # type: ignore[no-untyped-def]
    return extract(evs, "/w", 10, final_state=_state)  # type: ignore[arg-type]


def test_splice_to_a_socket_is_compared_by_its_bytes() -> None:
    a = _obs(_spliced(b"abc", reader_first=True))
    (conv,) = a.conversations["stream loopback:7000"]
    assert bytes(conv.sent) == b"abcllo w" and conv.captured == conv.total == 8 and not conv.gaps
    assert compare(a, _obs(_spliced(b"abc"))).verdict == "equivalent"
    v = compare(a, _obs(_spliced(b"abd")))
    assert v.verdict == "divergent" and "byte 2 " in v.explanation, v.explanation
    v = compare(a, _obs(_spliced(b"abc", offset_after=6)))  # 'ello ' instead of 'llo w'
    assert v.verdict == "divergent" and "byte 3 " in v.explanation, v.explanation


def test_unknown_pipe_content_is_a_gap_never_a_verdict_by_length() -> None:
    for why, evs in (("from outside the traced tree", _spliced(b"abc", from_stdin=True)),
                     ("offset was not captured", _spliced(b"abc", offset_after=None))):
        a, b = _obs(evs), _obs(evs)
        (conv,) = a.conversations["stream loopback:7000"]
        assert bytes(conv.sent[:conv.gaps["sent"]]) == b"abc"  # compared byte by byte up to the unknown bytes
        gaps = comparison_gaps(a, b, {})
        assert [g.kind for g in gaps] == ["unknown_content"] and why in gaps[0].detail, gaps


def test_a_file_the_run_changed_is_not_read_back() -> None:
    evs = _spliced(b"abc")
    evs.insert(-1, SyscallSpan(_h(50), 0, "openat", 7, {"dirfd": -100, "path": "data", "flags": 0o1}))
    evs.insert(-1, SyscallSpan(_h(51), 0, "write", 1, {"fd": 7}, b"x", 1))
    a = _obs(evs)
    gaps = comparison_gaps(a, a, {})
    assert any("changed the file" in g.detail for g in gaps), gaps


def test_a_range_past_the_content_kept_is_read_back_or_a_gap() -> None:
    """The final state keeps the first bytes only; the harness's reader reads the rest from the unchanged file."""
    def kept(path: str) -> FileEffect:
        return FileEffect(path, True, "file", 0o644, 11, "d", b"hel")  # 3 of 11 bytes kept
    evs = _spliced(b"abc")
    short = extract(evs, "/w", 10, final_state=kept)  # type: ignore[arg-type]
    gaps = comparison_gaps(short, short, {})
    assert [g.kind for g in gaps] == ["unknown_content"] and "beyond the 3 bytes kept" in gaps[0].detail, gaps
    read = extract(evs, "/w", 10, final_state=kept,  # type: ignore[arg-type]
                   read_range=lambda path, a, b: b"hello world"[a:b] if path == "/w/data" else None)
    (conv,) = read.conversations["stream loopback:7000"]
    assert bytes(conv.sent) == b"abcllo w" and not comparison_gaps(read, read, {})


def test_stdin_spliced_in_comes_from_the_harness_stdin() -> None:
    """The inherited fd 0 is the harness's --stdin file: its bytes at fd 0's position after the call."""
    evs = _spliced(b"abc", from_stdin=True)  # 5 bytes of stdin ending at offset 7
    obs = extract(evs, "/w", 10, final_state=_state, stdin_range=lambda a, b: b"HELLO WORLD"[a:b])  # type: ignore[arg-type]
    (conv,) = obs.conversations["stream loopback:7000"]
    assert bytes(conv.sent) == b"abcLLO W" and not comparison_gaps(obs, obs, {})
