"""The one fd tracker: fork inheritance, dup variants, close-on-exec, sockets, paths, byte streams."""

from __future__ import annotations

import doctest
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

import sysweave.streams.pipeline.fdtrack as fdtrack
from sysweave.schemas.events import EventHeader, ProcessEvent, ProcessEventType, SyscallSpan
from sysweave.streams.pipeline.fdresources import Op, ResourceKind
from sysweave.streams.pipeline.fdtrack import FdTracker, track

_seq = itertools.count(1)


def sc(pid: int, name: str, ret: int, host: str = "h", **args: object) -> SyscallSpan:
    n = next(_seq)
    return SyscallSpan(EventHeader(n.to_bytes(16, "big"), host, pid, pid, n, n), 0, name, ret, dict(args))  # type: ignore[arg-type]


def pe(pid: int, kind: ProcessEventType, child: int = 0, host: str = "h") -> ProcessEvent:
    n = next(_seq)
    return ProcessEvent(EventHeader(n.to_bytes(16, "big"), host, pid, pid, n, n), kind, pid, child)


def test_docstring_example() -> None:
    assert doctest.testmod(fdtrack).failed == 0


def test_fork_copies_thread_shares() -> None:
    tr = FdTracker("/w")
    tr.feed(sc(1, "openat", 3, dirfd=-100, path="a.txt", flags=1))
    tr.feed(pe(1, ProcessEventType.FORK, 2))
    tr.feed(pe(1, ProcessEventType.THREAD, 1001))
    tr.feed(sc(2, "close", 0, fd=3))
    assert tr.resource("h", 2, 3) is None
    res = tr.resource("h", 1, 3)
    assert res is not None and res.path == "/w/a.txt"
    assert tr.resource("other-host", 1, 3) is None  # keyed by (host, pid)


def test_dup_variants_and_cloexec() -> None:
    tr = FdTracker("/w")
    tr.feed(sc(1, "open", 3, path="/tmp/x", flags=0o2000001))  # O_CLOEXEC
    assert tr.feed(sc(1, "dup", 4, oldfd=3)).resource.path == "/tmp/x"  # type: ignore[union-attr]
    tr.feed(sc(1, "dup3", 5, oldfd=3, newfd=5, flags=0o2000000))
    tr.feed(sc(1, "fcntl", 6, fd=3, cmd=0, arg=6))  # F_DUPFD
    tr.feed(sc(1, "fcntl", 7, fd=3, cmd=1030, arg=7))  # F_DUPFD_CLOEXEC
    tr.feed(sc(1, "dup2", 1, oldfd=3, newfd=1))
    tr.feed(sc(1, "fcntl", 0, fd=6, cmd=2, arg=1))  # F_SETFD FD_CLOEXEC
    tr.feed(pe(1, ProcessEventType.EXEC))
    assert sorted(tr.fds("h", 1)) == [0, 1, 2, 4]  # 3 (O_CLOEXEC), 5, 6, 7 closed at exec
    assert tr.resource("h", 1, 1).path == "/tmp/x"  # type: ignore[union-attr]


def test_close_range() -> None:
    tr = FdTracker()
    for fd in (3, 4, 9):
        tr.feed(sc(1, "socket", fd, domain=2, type=1))
    tr.feed(sc(1, "close_range", 0, arg0=4, arg1=0xFFFFFFFF, arg2=0))
    assert sorted(tr.fds("h", 1)) == [0, 1, 2, 3]


def test_socket_connect_einprogress_shared_by_fork() -> None:
    tr = FdTracker()
    tr.feed(sc(1, "socket", 3, domain=2, type=1))
    tr.feed(pe(1, ProcessEventType.FORK, 2))
    acc = tr.feed(sc(1, "connect", -115, fd=3, addr="10.0.0.2:80"))
    assert acc is not None and acc.op is Op.CONNECT
    child = tr.resource("h", 2, 3)  # the child holds the same socket: it is connected too
    assert child is not None and child.kind is ResourceKind.CONN and child.remote == "10.0.0.2:80"
    w = tr.feed(sc(2, "sendto", 4, fd=3))
    r = tr.feed(sc(1, "recvfrom", 4, fd=3))
    assert w is not None and r is not None and w.stream == (child.id, 0) and r.stream == (child.id, 1)
    assert tr.feed(sc(1, "connect", -111, fd=3, addr="x")) is None  # ECONNREFUSED: nothing happened


def test_socketpair_has_two_directions_pipe_one() -> None:
    tr = FdTracker()
    tr.feed(sc(1, "socketpair", 0, domain=1, type=1, sv=(3, 4)))
    tr.feed(sc(1, "pipe", 0, pipefd=(5, 6)))
    a = tr.feed(sc(1, "write", 1, fd=3))
    b = tr.feed(sc(1, "write", 1, fd=4))
    assert a is not None and b is not None and a.stream != b.stream
    assert tr.feed(sc(1, "read", 1, fd=4)).stream == a.stream  # type: ignore[union-attr]
    assert tr.feed(sc(1, "write", 1, fd=6)).stream == tr.feed(sc(1, "read", 1, fd=5)).stream  # type: ignore[union-attr]


def test_paths_cwd_fchdir_dirfd() -> None:
    tr = FdTracker("/w")
    tr.feed(sc(1, "chdir", 0, path="sub/../d"))
    assert tr.cwd("h", 1) == "/w/d"
    tr.feed(sc(1, "openat", 3, dirfd=-100, path="/etc", flags=0o200000))
    tr.feed(sc(1, "fchdir", 0, fd=3))
    assert tr.cwd("h", 1) == "/etc"
    tr.feed(sc(1, "open", 4, path="/w/out", flags=0o200000))
    assert tr.feed(sc(1, "openat", 5, dirfd=4, path="f.txt", flags=1)).paths == ("/w/out/f.txt",)  # type: ignore[union-attr]
    ren = tr.feed(sc(1, "renameat", 0, olddirfd=4, oldpath="f.txt", newdirfd=-100, newpath="g"))
    assert ren is not None and ren.op is Op.OTHER and ren.paths == ("/w/out/f.txt", "/etc/g")
    assert FdTracker().resolve("h", 1, "rel/x") == "rel/x"  # unknown cwd: stays relative


def test_io_families() -> None:
    tr = FdTracker()
    tr.feed(sc(1, "pipe2", 0, pipefd=(3, 4), flags=0))
    for name in fdtrack.WRITES:
        assert tr.feed(sc(1, name, 2, fd=4)).op is Op.WRITE  # type: ignore[union-attr]
    for name in fdtrack.READS:
        acc = tr.feed(sc(1, name, 2, fd=3))
        assert acc is not None and acc.op is Op.READ and acc.nbytes == 2 and acc.stream is not None


@given(st.permutations(list(range(6))))
@settings(max_examples=30)
def test_track_is_order_independent(perm: list[int]) -> None:
    evs = [sc(1, "pipe", 0, pipefd=(3, 4)), pe(1, ProcessEventType.FORK, 2), sc(1, "write", 3, fd=4),
           sc(2, "read", 3, fd=3), sc(2, "close", 0, fd=3), sc(1, "close", 0, fd=4)]
    want = [(a.event.h.event_id, a.op, a.stream) for a in track(evs)]
    assert [(a.event.h.event_id, a.op, a.stream) for a in track([evs[i] for i in perm])] == want


def test_in_kernel_transfers_move_bytes_between_streams() -> None:
    """sendfile (raw arguments, as the agent ships an undecoded call) and splice (named) write into their
    out fd and consume from their in fd: pipe edges follow the bytes through them."""
    from sysweave.schemas.events import EdgeKind
    from sysweave.streams.pipeline import build_trace

    evs = [sc(1, "pipe", 0, pipefd=(3, 4)), sc(1, "pipe", 0, pipefd=(5, 6)), pe(1, ProcessEventType.FORK, 2),
           sc(1, "write", 4, fd=4), sc(1, "openat", 7, dirfd=-100, path="/data", flags=0),
           sc(1, "sendfile", 10, arg0=4, arg1=7, arg2=0, arg3=10)]
    tee = sc(2, "tee", 14, fd_in=3, fd_out=6)
    spl = sc(2, "splice", 14, fd_in=3, off_in=0, fd_out=6, off_out=0, len=64, flags=0)
    rd = sc(2, "read", 14, fd=5)
    evs += [tee, spl, rd]
    accs = {a.event.h.event_id: a for a in track(evs)}
    s = accs[evs[5].h.event_id]
    assert s.op is Op.WRITE and s.nbytes == 10 and s.resource.kind is ResourceKind.PIPE  # type: ignore[union-attr]
    assert s.source is not None and s.source.path == "/data"
    assert accs[tee.h.event_id].consumed is False and accs[spl.h.event_id].consumed is True
    t = build_trace(evs, b"k" * 16).trace
    pipe = {(e.src, e.dst) for e in t.edges if e.kind is EdgeKind.PIPE}
    # pipe 1: write (4 B) + sendfile (10 B), then tee copies 14 B without consuming and splice takes them;
    # pipe 2: tee's 14 B then splice's 14 B; the read of the first 14 returns tee's bytes
    assert pipe == {(evs[3].h.event_id, spl.h.event_id), (tee.h.event_id, rd.h.event_id)}


_CALLS = st.one_of(
    st.builds(lambda fd: ("socket", fd, {"domain": 2, "type": 1}), st.integers(3, 8)),
    st.builds(lambda fd: ("connect", -115, {"fd": fd, "addr": "10.0.0.2:80"}), st.integers(3, 8)),
    st.builds(lambda a, b: ("pipe2", 0, {"pipefd": (a, b), "flags": 0}), st.integers(3, 8), st.integers(3, 8)),
    st.builds(lambda a, b: ("dup2", b, {"oldfd": a, "newfd": b}), st.integers(0, 8), st.integers(0, 8)),
    st.builds(lambda fd: ("close", 0, {"fd": fd}), st.integers(0, 8)),
    st.builds(lambda fd: ("openat", fd, {"dirfd": -100, "path": "/f", "flags": 1}), st.integers(3, 8)),
    st.builds(lambda n, fd, ret: (n, ret, {"fd": fd}), st.sampled_from(sorted(fdtrack.RW_CALLS)), st.integers(0, 8),
              st.integers(-1, 5)),
)


@given(st.lists(st.tuples(st.integers(1, 2), _CALLS), max_size=40))
@settings(max_examples=150)
def test_io_target_answers_reads_and_writes_as_feed_does(calls: list[tuple[int, tuple[str, int, dict[str, object]]]]) -> None:
    """The fd-table fast path (``io_target``, no Access built) resolves every successful read and write to the
    resource ``feed`` says it used; and ``track_streams`` is ``track`` filtered to byte streams."""
    tr = FdTracker()
    evs = []
    for pid, (name, ret, args) in calls:
        e = sc(pid, name, ret, **args)
        evs.append(e)
        if name in fdtrack.RW_CALLS and ret > 0:
            fd, res = tr.io_target(e)
            acc = tr.feed(e)
            assert fd == args["fd"] and res == (acc.resource if acc is not None else None)
        else:
            tr.feed(e)
    streaming = (ResourceKind.PIPE, ResourceKind.SOCKETPAIR, ResourceKind.CONN)
    want = [(a.event.h.event_id, a.op, a.stream) for a in track(evs)
            if a.op in (Op.CONNECT, Op.ACCEPT) or (a.op in (Op.READ, Op.WRITE) and a.nbytes > 0
                                                   and a.resource is not None and a.resource.kind in streaming)]
    assert [(a.event.h.event_id, a.op, a.stream) for a in fdtrack.track_streams(evs)] == want
