"""Property tests of the definition (docs/equivalence.md): what is not an effect never changes the verdict,
and any single-byte change to a final file always does."""

from __future__ import annotations

import hashlib
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from sysweave.schemas.events import CausalStamp, Event, EventHeader, FileState, ProcessEvent, ProcessEventType, SyscallSpan
from sysweave.validator.equivalence.compare import compare
from sysweave.validator.equivalence.observe import Obs, extract

W = "/w/run"
names = st.lists(st.text("abcdefgh", min_size=1, max_size=6), min_size=1, max_size=5, unique=True)
contents = st.binary(min_size=1, max_size=200)


class Builder:
    def __init__(self) -> None:
        self.seq = itertools.count(1)
        self.events: list[Event] = [ProcessEvent(self.h(), ProcessEventType.EXEC, filename="/usr/bin/p", argv=("p",))]

    def h(self, pid: int = 10) -> EventHeader:
        n = next(self.seq)
        return EventHeader(n.to_bytes(16, "big"), "h", pid, pid, n, n, 1, CausalStamp(n, 0))

    def sc(self, name: str, ret: int, payload: bytes | None = None, **args: object) -> None:
        self.events.append(SyscallSpan(self.h(), 0, name, ret, dict(args), payload, max(ret, 0)))  # type: ignore[arg-type]

    def obs(self, files: dict[str, bytes]) -> Obs:
        for name, data in sorted(files.items()):
            self.events.append(FileState(self.h(), f"{W}/{name}", True, "file", 0o644, len(data),
                                         hashlib.blake2b(data, digest_size=32).hexdigest(), data, "", W))
        return extract(self.events, W, 10, b"", b"", 0, home="/nonexistent")


def program(files: dict[str, bytes], order: list[str], cuts: dict[str, list[int]], fds: dict[str, int],
            interleave: bool = False) -> Obs:
    """Write each file (in ``order``, on fd ``fds[name]``, in chunks cut at ``cuts[name]``)."""
    b = Builder()
    for name in order:
        b.sc("openat", fds[name], dirfd=-100, path=name, flags=0o1101, mode=0o644)
    chunks = {n: [(n, c) for c in _chunks(files[n], cuts.get(n, []))] for n in order}
    if interleave:  # round-robin over the files: writes to independent files interleaved
        writes = [w for row in itertools.zip_longest(*(chunks[n] for n in order)) for w in row if w is not None]
    else:
        writes = [w for n in order for w in chunks[n]]
    for name, chunk in writes:
        b.sc("write", len(chunk), chunk, fd=fds[name])
    for name in order:
        b.sc("close", 0, fd=fds[name])
    return b.obs(files)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % len(data) for c in cuts if c % len(data)})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


@st.composite
def runs(draw: st.DrawFn) -> tuple[dict[str, bytes], Obs, Obs]:
    files = {n: draw(contents) for n in draw(names)}
    order_a = list(files)
    order_b = draw(st.permutations(order_a))
    cuts = {n: draw(st.lists(st.integers(0, 500), max_size=5)) for n in files}
    fd_values = st.lists(st.integers(3, 900), min_size=len(files), max_size=len(files), unique=True)
    fds_a, fds_b = dict(zip(order_a, draw(fd_values))), dict(zip(order_a, draw(fd_values)))
    a = program(files, order_a, {}, fds_a)
    b = program(files, list(order_b), cuts, fds_b, interleave=draw(st.booleans()))
    return files, a, b


@settings(max_examples=60, deadline=None)
@given(runs())
def test_reordering_chunking_and_fd_numbers_never_change_the_verdict(case: tuple[dict[str, bytes], Obs, Obs]) -> None:
    _, a, b = case
    v = compare(a, b)
    assert v.verdict == "equivalent", v.explanation
    assert v.confidence == 1.0


@settings(max_examples=60, deadline=None)
@given(runs(), st.data())
def test_any_single_byte_change_to_a_final_file_is_divergent(case: tuple[dict[str, bytes], Obs, Obs],
                                                             data: st.DataObject) -> None:
    files, a, _ = case
    name = data.draw(st.sampled_from(sorted(files)))
    i = data.draw(st.integers(0, len(files[name]) - 1))
    flip = data.draw(st.integers(1, 255))
    changed = dict(files)
    changed[name] = files[name][:i] + bytes([files[name][i] ^ flip]) + files[name][i + 1:]
    b = program(changed, list(files), {}, {n: 3 + k for k, n in enumerate(files)})
    v = compare(a, b)
    assert v.verdict == "divergent" and v.divergence is not None
    assert v.divergence.resource == f"file:./{name}" and v.divergence.index_original == i


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["sort", "gzip", "wc", "tr"]), st.sampled_from(["-r", "-9", "-l", ""])),
                min_size=1, max_size=5), st.randoms())
def test_order_of_independent_children_never_changes_the_verdict(children: list[tuple[str, str]], rnd) -> None:  # type: ignore[no-untyped-def]
    def run(kids: list[tuple[str, str]], base: int) -> Obs:
        b = Builder()
        for n, (prog, arg) in enumerate(kids):
            pid = base + n
            b.events.append(ProcessEvent(b.h(), ProcessEventType.FORK, parent_pid=10, child_pid=pid))
            b.events.append(ProcessEvent(b.h(pid), ProcessEventType.EXEC, filename=f"/usr/bin/{prog}",
                                         argv=(prog, arg) if arg else (prog,)))
            b.events.append(ProcessEvent(b.h(), ProcessEventType.WAIT, parent_pid=10, child_pid=pid, exit_code=0))
        return b.obs({})

    shuffled = list(children)
    rnd.shuffle(shuffled)
    assert compare(run(children, 100), run(shuffled, 500)).verdict == "equivalent"
