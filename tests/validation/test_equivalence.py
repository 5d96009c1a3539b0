"""Obs extraction and comparison on synthetic events (no tracing needed)."""

from __future__ import annotations

import itertools

from sysweave.schemas.events import CausalStamp, EventHeader, ProcessEvent, ProcessEventType, SyscallSpan, make_event_id
from sysweave.validator.equivalence.compare import compare
from sysweave.validator.equivalence.harness import mask_nondeterminism
from sysweave.validator.equivalence.observe import Obs, extract, normalize_endpoint

_seq = itertools.count(1)


def h(pid: int = 10) -> EventHeader:
    n = next(_seq)
    return EventHeader(make_event_id(1, n), "h", pid, pid, n * 1000, n * 1000, 10, CausalStamp(n, 0))


def sc(name: str, ret: int, pid: int = 10, payload: bytes | None = None, **args: object) -> SyscallSpan:
    return SyscallSpan(h(pid), 0, name, ret, dict(args), payload, max(ret, 0))  # type: ignore[arg-type]


def run(tmp_path, events: list, stdout: bytes = b"", code: int = 0, files: dict[str, bytes] | None = None) -> Obs:
    for name, content in (files or {}).items():
        (tmp_path / name).write_bytes(content)
    return extract(events, str(tmp_path), 10, stdout, b"", code, home="/nonexistent-home")


def writes_out(tmp_path, chunks: list[bytes]) -> list:
    evs = [ProcessEvent(h(), ProcessEventType.EXEC, filename="/usr/bin/prog", argv=("prog",)),
           sc("openat", 3, dirfd=-100, path=str(tmp_path / "out.txt"), flags=0o1101, mode=0o644)]
    evs += [sc("write", len(c), fd=3, payload=c) for c in chunks]
    evs += [sc("close", 0, fd=3), sc("openat", 4, dirfd=-100, path="/usr/lib/libc.so.6", flags=0)]
    return evs


def test_buffering_is_not_observable(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = run(tmp_path / "a", writes_out(tmp_path / "a", [b"x\n"] * 100), files={"out.txt": b"x\n" * 100})
    b = run(tmp_path / "b", writes_out(tmp_path / "b", [b"x\n" * 100]), files={"out.txt": b"x\n" * 100})
    assert a.files["./out.txt"].ops == ["create", "truncate", "write"]
    assert "/usr/lib/libc.so.6" not in a.reads  # the runtime's own files
    assert compare(a, b).verdict == "equivalent"


def test_content_difference_names_the_byte(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = run(tmp_path / "a", writes_out(tmp_path / "a", [b"ping"]), files={"out.txt": b"ping"})
    b = run(tmp_path / "b", writes_out(tmp_path / "b", [b"pong"]), files={"out.txt": b"pong"})
    v = compare(a, b)
    assert v.verdict == "divergent" and v.divergence and v.divergence.resource == "file:./out.txt"
    assert "byte 1 of ./out.txt differs" in v.explanation


def test_missing_file_and_exit_and_stdout(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = run(tmp_path / "a", writes_out(tmp_path / "a", [b"x"]), b"ping\n", files={"out.txt": b"x"})
    b = run(tmp_path / "b", [], b"ping\n")
    assert "never touches ./out.txt" in compare(a, b).explanation
    assert compare(a, run(tmp_path / "b", writes_out(tmp_path / "b", [b"x"]), b"pong\n", files={"out.txt": b"x"})).explanation \
        == "byte 1 of stdout differs: 'ing\\n' vs 'ong\\n'"
    c = run(tmp_path / "b", writes_out(tmp_path / "b", [b"x"]), b"ping\n", code=3, files={"out.txt": b"x"})
    assert compare(a, c).explanation == "exit code 0 vs 3"


def test_fd_tracking_through_dup_and_fork(tmp_path) -> None:
    evs = [sc("openat", 5, dirfd=-100, path=str(tmp_path / "log"), flags=0o101),
           sc("dup2", 1, oldfd=5, newfd=1),
           ProcessEvent(h(), ProcessEventType.FORK, parent_pid=10, child_pid=11),
           sc("write", 3, pid=11, fd=1, payload=b"abc")]
    obs = run(tmp_path, evs, files={"log": b"abc"})
    assert obs.files["./log"].ops == ["create", "write"] and obs.files["./log"].bytes_written == 3


def test_network_payloads_and_endpoint_normalisation(tmp_path) -> None:
    assert normalize_endpoint("127.0.0.1:40000") == "loopback:ephemeral"
    assert normalize_endpoint("[::1]:443") == "loopback:443"
    evs = [sc("socket", 3, domain=2), sc("connect", 0, fd=3, addr="127.0.0.1:8080"),
           sc("sendto", 4, fd=3, payload=b"PING"), sc("recvfrom", 4, fd=3, payload=b"PONG")]
    a = run(tmp_path, evs)
    assert (a.connections[0].remote, bytes(a.connections[0].sent), bytes(a.connections[0].received)) == \
        ("loopback:8080", b"PING", b"PONG")
    evs[3] = sc("recvfrom", 4, fd=3, payload=b"PANG")
    b = run(tmp_path, evs)
    assert "received" in compare(a, b).explanation


def test_child_processes_are_matched_by_role(tmp_path) -> None:
    def tree(child_argv: tuple[str, ...], code: int) -> list:
        return [ProcessEvent(h(), ProcessEventType.FORK, parent_pid=10, child_pid=20),
                ProcessEvent(h(20), ProcessEventType.EXEC, filename="/usr/bin/sort", argv=child_argv),
                ProcessEvent(h(), ProcessEventType.WAIT, parent_pid=10, child_pid=20, exit_code=code)]

    same = compare(run(tmp_path, tree(("sort",), 0)), run(tmp_path, tree(("sort",), 0)))
    assert same.verdict == "equivalent"
    diff = compare(run(tmp_path, tree(("sort",), 0)), run(tmp_path, tree(("sort", "-r"), 0)))
    assert diff.verdict == "divergent" and "'sort'" in diff.explanation


def test_tolerance_applies_to_counts_only(tmp_path) -> None:
    def reads(n: int) -> list:
        return [sc("openat", 3, dirfd=-100, path=str(tmp_path / "in.txt"), flags=0) for _ in range(n)]

    assert compare(run(tmp_path, reads(100)), run(tmp_path, reads(97)), tolerance=0.05).verdict == "equivalent"
    assert compare(run(tmp_path, reads(100)), run(tmp_path, reads(90)), tolerance=0.05).verdict == "divergent"


def test_masking_nondeterministic_tokens() -> None:
    runs = [Obs(stdout=b"pid 123 started\nok\n"), Obs(stdout=b"pid 456 started\nok\n")]
    masked, notes = mask_nondeterminism(runs)
    assert masked.stdout.startswith(b"pid \x00?\x00 started") and notes


def test_data_flow_between_processes_is_compared() -> None:
    a, b = Obs(), Obs()
    a.edges = [("PIPE", "root", "sort"), ("PIPE", "sort", "root")]
    b.edges = [("PIPE", "root", "sort")]
    v = compare(a, b)
    assert v.verdict == "divergent" and v.divergence and v.divergence.resource == "edges"
    assert "'sort' sends data to 'root' over a pipe" in v.explanation
    b.edges = list(reversed(a.edges))
    assert compare(a, b).verdict == "equivalent"  # a set of flows: order and count are not behaviour


def test_edge_roles_from_a_trace() -> None:
    from sysweave.streams.pipeline.assembly import assemble
    from sysweave.streams.pipeline.causality import apply_causality
    from sysweave.validator.equivalence.observe import edge_roles

    evs = [ProcessEvent(h(10), ProcessEventType.EXEC, filename="/x", argv=("x",)),
           sc("pipe2", 0, pipefd=(3, 4)),
           ProcessEvent(h(10), ProcessEventType.FORK, parent_pid=10, child_pid=11),
           ProcessEvent(h(11), ProcessEventType.EXEC, filename="/usr/bin/sort", argv=("sort",)),
           sc("write", 4, fd=4, payload=b"b\na\n"),
           sc("read", 4, pid=11, fd=3, payload=b"b\na\n")]
    trace = assemble(evs, b"e" * 16)
    apply_causality(trace)
    assert edge_roles(trace, ("h", 10)) == [("PIPE", "root", "sort")]
