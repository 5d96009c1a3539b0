"""Effects extraction and comparison on synthetic events (no tracing needed): the definition in
docs/equivalence.md, case by case."""

from __future__ import annotations

import hashlib
import itertools

from sysweave.schemas.events import (
    CausalStamp,
    EventHeader,
    FileState,
    ProcessEvent,
    ProcessEventType,
    SyscallSpan,
    make_event_id,
)
from sysweave.validator.equivalence.compare import compare
from sysweave.validator.equivalence.harness import mask_nondeterminism
from sysweave.validator.equivalence.observe import Obs, StreamObs, extract, normalize_endpoint

W = "/w/run"
_seq = itertools.count(1)


def h(pid: int = 10, host: str = "h") -> EventHeader:
    n = next(_seq)
    return EventHeader(make_event_id(1, n), host, pid, pid, n * 1000, n * 1000, 10, CausalStamp(n, 0))


def sc(name: str, ret: int, pid: int = 10, payload: bytes | None = None, **args: object) -> SyscallSpan:
    return SyscallSpan(h(pid), 0, name, ret, dict(args), payload, max(ret, 0))  # type: ignore[arg-type]


def exe(argv: tuple[str, ...], pid: int = 10, filename: str = "") -> ProcessEvent:
    return ProcessEvent(h(pid), ProcessEventType.EXEC, filename=filename or f"/usr/bin/{argv[0]}", argv=argv)


def fork(parent: int, child: int) -> ProcessEvent:
    return ProcessEvent(h(parent), ProcessEventType.FORK, parent_pid=parent, child_pid=child)


def wait(parent: int, child: int, code: int | None = 0, sig: int | None = None) -> ProcessEvent:
    return ProcessEvent(h(parent), ProcessEventType.WAIT, parent_pid=parent, child_pid=child, exit_code=code, signal=sig)


def state(path: str, content: bytes | None = None, mode: int = 0o644, typ: str = "file", target: str = "") -> FileState:
    if content is None and typ == "file":
        return FileState(h(), f"{W}/{path}", False, cwd=W)
    digest = hashlib.blake2b(content if typ == "file" else target.encode(), digest_size=32).hexdigest()
    return FileState(h(), f"{W}/{path}", True, typ, mode, len(content or b""), digest, content or b"", target, W)


def write_file(path: str, chunks: list[bytes], fd: int = 3, pid: int = 10, absolute: bool = False) -> list:
    spelled = f"{W}/{path}" if absolute else path
    return ([sc("openat", fd, pid, dirfd=-100, path=spelled, flags=0o1101, mode=0o644)]
            + [sc("write", len(c), pid, c, fd=fd) for c in chunks] + [sc("close", 0, pid, fd=fd)])


def run(events: list, stdout: bytes = b"", code: int = 0, stderr: bytes = b"") -> Obs:
    start = ProcessEvent(EventHeader(make_event_id(9, 0), "h", 10, 10, 0, 0), ProcessEventType.EXEC,
                         filename="/usr/bin/prog", argv=("prog",))  # the program's exec comes first
    return extract([start, *events], W, 10, stdout, stderr, code, home="/nonexistent-home")


def test_buffering_and_spelling_are_not_effects() -> None:
    a = run(write_file("out.txt", [b"x\n"] * 100) + [state("out.txt", b"x\n" * 100)])
    b = run(write_file("out.txt", [b"x\n" * 100], fd=7, absolute=True) + [state("out.txt", b"x\n" * 100)])
    assert set(a.files) == {"./out.txt"} and a.files["./out.txt"].describe() == "file mode 0644, 200 bytes"
    assert compare(a, b).verdict == "equivalent"


def test_temp_file_renamed_into_place_is_the_same_as_writing_directly() -> None:
    direct = run(write_file("out.txt", [b"data"]) + [state("out.txt", b"data")])
    via_tmp = run(write_file(".tmp-k3j2", [b"da", b"ta"]) + [sc("rename", 0, oldpath=".tmp-k3j2", newpath="out.txt"),
                                                           state(".tmp-k3j2"), state("out.txt", b"data")])
    assert "./.tmp-k3j2" not in via_tmp.files  # intermediate: created and gone
    assert compare(direct, via_tmp).verdict == "equivalent"


def test_final_content_mode_type_and_existence_are_effects() -> None:
    base = run(write_file("out.txt", [b"ping"]) + [state("out.txt", b"ping")])
    v = compare(base, run(write_file("out.txt", [b"pong"]) + [state("out.txt", b"pong")]))
    assert v.verdict == "divergent" and v.divergence and v.divergence.resource == "file:./out.txt"
    assert v.explanation == "byte 1 of ./out.txt differs: 'ping' vs 'pong'"
    v = compare(base, run(write_file("out.txt", [b"ping"]) + [state("out.txt", b"ping", 0o600)]))
    assert v.explanation == "./out.txt has mode 0644 in the original but 0600 in the transpiled run"
    v = compare(base, run([]))
    assert v.explanation.startswith("./out.txt exists at the end of the original only")
    link = [sc("symlink", 0, target="v1", linkpath="cur")]
    v = compare(run(link + [state("cur", typ="symlink", target="v1", mode=0o777)]),
                run(link + [state("cur", typ="symlink", target="v2", mode=0o777)]))
    assert "symlink -> v1 in the original but a symlink -> v2" in v.explanation


def test_exit_stdout_stderr() -> None:
    a = run([], b"ping\n")
    assert compare(a, run([], b"pong\n")).explanation == "byte 1 of stdout differs: 'ping\\n' vs 'pong\\n'"
    assert compare(a, run([], b"ping\n", code=3)).explanation == "exit code 0 vs 3"
    assert compare(a, run([], b"ping\n", stderr=b"warn\n")).divergence.resource == "stderr"  # type: ignore[union-attr]


def test_death_by_signal_is_not_an_exit_code() -> None:
    killed = run([ProcessEvent(h(), ProcessEventType.EXIT, exit_code=None)], code=143)
    exited = run([ProcessEvent(h(), ProcessEventType.EXIT, exit_code=143)], code=143)
    assert (killed.exit_code, killed.exit_signal) == (None, 15)
    assert compare(killed, exited).explanation == "killed by SIGTERM vs exit code 143"


def test_fd_numbers_dup_and_fork_do_not_matter() -> None:
    evs = [sc("openat", 5, dirfd=-100, path="log", flags=0o101), sc("dup2", 1, oldfd=5, newfd=1),
           fork(10, 11), sc("write", 3, 11, b"abc", fd=1), state("log", b"abc")]
    other = write_file("log", [b"abc"], fd=9) + [state("log", b"abc")]
    assert compare(run(evs), run(other)).verdict == "equivalent"


def test_network_by_endpoint_and_direction() -> None:
    assert normalize_endpoint("127.0.0.1:40000") == "loopback:ephemeral"
    assert normalize_endpoint("[::1]:443") == "loopback:443"

    def talk(reply: bytes, port: int = 8080) -> list:
        return [sc("socket", 3, domain=2, type=1), sc("connect", 0, fd=3, addr=f"127.0.0.1:{port}"),
                sc("sendto", 4, payload=b"PING", fd=3), sc("recvfrom", len(reply), payload=reply, fd=3)]

    a = run(talk(b"PONG"))
    assert list(a.conversations) == ["stream loopback:8080"]
    assert "(received)" in compare(a, run(talk(b"PANG"))).explanation
    v = compare(a, run(talk(b"PONG", 9090)))
    said = [v.explanation] + [x.explanation for x in v.symptoms]
    assert "only the original connects to loopback:8080" in said and "only the transpiled run connects to loopback:9090" in said


def test_datagrams_by_destination_message_by_message() -> None:
    def udp(msgs: list[bytes], dest: str = "127.0.0.1:8125", connect: bool = False) -> list:
        evs = [sc("socket", 3, domain=2, type=2)]
        if connect:
            evs.append(sc("connect", 0, fd=3, addr=dest))
        return evs + [sc("sendto", len(m), payload=m, fd=3, **({} if connect else {"dest_addr": dest})) for m in msgs]

    a = run(udp([b"a:1|c", b"b:2|c"]))
    assert compare(a, run(udp([b"a:1|c", b"b:2|c"], connect=True))).verdict == "equivalent"  # send vs sendto
    v = compare(a, run(udp([b"a:1|cb:2|c"])))  # the same bytes in one datagram are a different conversation
    assert v.verdict == "divergent" and "datagram 0" in v.explanation
    assert compare(a, run(udp([b"a:1|c", b"b:2|c"], "127.0.0.1:8126"))).verdict == "divergent"


def test_visible_programs_matched_by_role_not_order_or_pid() -> None:
    def tree(children: list[tuple[str, ...]], code: int = 0) -> list:
        evs: list = []
        for n, argv in enumerate(children):
            evs += [fork(10, 20 + n), exe(argv, 20 + n), wait(10, 20 + n, code)]
        return evs

    a = run(tree([("sort",), ("gzip", "-9")]))
    assert compare(a, run(tree([("/usr/bin/gzip", "-9"), ("sort",)]))).verdict == "equivalent"
    v = compare(a, run(tree([("sort", "-r"), ("gzip", "-9")])))
    assert v.verdict == "divergent" and "'sort'" in v.explanation
    assert compare(a, run(tree([("sort",), ("gzip", "-9")], code=1))).verdict == "divergent"


def _pyenv_like(script: str) -> list:
    """pid 10: a shim that execs bash, forks helpers that only read version files, then execs the interpreter."""
    return [exe(("python3", script), filename="/home/u/.pyenv/shims/python3"),
            exe(("bash", "/home/u/.pyenv/shims/python3", script), filename="/usr/bin/bash"),
            sc("pipe2", 0, pipefd=(5, 6)), fork(10, 30), sc("dup2", 1, 30, oldfd=6, newfd=1),
            exe(("pyenv-version-name",), 30, "/home/u/.pyenv/libexec/pyenv-version-name"),
            sc("openat", 3, 30, dirfd=-100, path="/home/u/.pyenv/version", flags=0),
            fork(30, 31), sc("write", 6, 31, b"3.11.7", fd=1), wait(10, 30),
            exe(("/home/u/.pyenv/versions/3.11.7/bin/python3.11", script),
                filename="/home/u/.pyenv/versions/3.11.7/bin/python3.11")]


def test_launchers_are_transparent() -> None:
    def work(pid: int = 10) -> list:
        return write_file("out.txt", [b"ok"], pid=pid) + [state("out.txt", b"ok"), fork(pid, pid + 30),
                                                          exe(("sort",), pid + 30), wait(pid, pid + 30)]

    def obs(events: list) -> Obs:
        return extract(events, W, 10, b"hi\n", b"", 0, home="/home/u")

    direct = obs([exe(("/usr/bin/python3.11", "/s/p.py")), *work()])
    shim = obs([*_pyenv_like("/s/p.py"), *work()])
    env = obs([exe(("env", "python3", "/s/p.py")), exe(("python3", "/s/p.py"), filename="/usr/bin/python3"), *work()])
    # sh -c forks the interpreter (pid 50) and waits for it: the wrapper is looked through
    sh = obs([exe(("/bin/sh", "-c", "python3 /s/p.py")), fork(10, 50), exe(("python3", "/s/p.py"), 50), *work(50),
              wait(10, 50)])
    for other in (shim, env, sh):
        v = compare(direct, other)
        assert v.verdict == "equivalent", v.explanation
    assert direct.programs and [c.role for c in direct.programs.children] == [("sort",)]
    assert shim.programs and shim.programs.role == ("python", "/s/p.py")
    assert sh.programs and sh.programs.via == [("h", 10)]


def test_helper_with_effects_is_not_dropped() -> None:
    noisy = _pyenv_like("/s/p.py")
    noisy.insert(7, sc("openat", 4, 30, dirfd=-100, path=f"{W}/stamp", flags=0o101))
    obs = extract([*noisy, state("stamp", b"")], W, 10, b"", b"", 0, home="/home/u")
    quiet = extract(_pyenv_like("/s/p.py"), W, 10, b"", b"", 0, home="/home/u")
    assert compare(quiet, obs).verdict == "divergent"


def test_input_files_read_are_compared_as_a_set() -> None:
    def reads(path: str, n: int) -> list:
        return [sc("openat", 3, dirfd=-100, path=path, flags=0) for _ in range(n)]

    assert compare(run(reads("in.txt", 3)), run(reads("in.txt", 1))).verdict == "equivalent"
    v = compare(run(reads("in.txt", 1)), run(reads("in.old", 1)))
    assert v.verdict == "divergent" and "reads ./in" in v.explanation
    assert not run(reads("/usr/lib/libc.so.6", 1)).reads  # the runtime's own files


def test_first_divergence_in_happens_before_order_with_symptoms() -> None:
    def job(worker_out: bytes, printed: bytes) -> Obs:
        evs = [exe(("coord",)), fork(10, 11), exe(("worker", "1"), 11)]
        evs += write_file("shard-1", [worker_out], pid=11) + [wait(10, 11)]
        evs += [sc("write", len(printed), 10, printed, fd=1), state("shard-1", worker_out)]
        return extract(evs, W, 10, printed, b"", 0, home="/nonexistent")

    v = compare(job(b"1203", b"total 1203\n"), job(b"1204", b"total 1204\n"))
    assert v.divergence and v.divergence.resource == "file:./shard-1" and v.divergence.role == "worker 1"
    assert [s.resource for s in v.symptoms] == ["stdout"]


def test_confidence_is_derived_from_evidence() -> None:
    a = run(write_file("o", [b"x"]) + [state("o", b"x")])
    assert compare(a, a).confidence == 1.0
    lossy = run(write_file("o", [b"x"]) + [state("o", b"x")])
    lossy.lost_events = lossy.events  # half the events lost
    v = compare(a, lossy)
    assert 0 < v.confidence < 1 and round(v.evidence["factors"]["lost_events"], 4) == v.confidence
    masked_a, masked_b = Obs(), Obs()
    masked_a.streams["stdout"] = StreamObs(b"pid \x00?\x00 ok\n", 10)
    masked_b.streams["stdout"] = StreamObs(b"pid \x00?\x00 ok\n", 10)
    masked_a.masked_bytes = 3
    c = compare(masked_a, masked_b).confidence
    assert 0.8 < c < 1


def test_masking_nondeterministic_tokens() -> None:
    runs = [Obs(streams={"stdout": StreamObs(b"pid 123 started\nok\n")}),
            Obs(streams={"stdout": StreamObs(b"pid 456 started\nok\n")})]
    masked, notes = mask_nondeterminism(runs)
    assert masked.stdout.startswith(b"pid \x00?\x00 started") and notes and masked.masked_bytes == 3


def test_multi_host_resources_are_named_by_host() -> None:
    def host_run(content: bytes) -> Obs:
        evs = []
        for host in ("A", "B"):
            ex = ProcessEvent(h(10, host), ProcessEventType.EXEC, filename="/usr/bin/python3", argv=("python3", f"{host}.py"))
            op = SyscallSpan(h(10, host), 0, "openat", 3, {"dirfd": -100, "path": "out.txt", "flags": 0o1101})
            fs = FileState(h(10, host), f"/job/{host}/out.txt", True, "file", 0o644, len(content),
                           hashlib.blake2b(content if host == "B" else b"a", digest_size=32).hexdigest(),
                           content if host == "B" else b"a", "", f"/job/{host}")
            evs += [ex, op, fs]
        return extract(evs, "", 0, None, None, None, capture_stdio=True, home="/nonexistent")

    a, b = host_run(b"1203"), host_run(b"1204")
    assert set(a.files) == {"A: ./out.txt", "B: ./out.txt"}
    v = compare(a, b)
    assert v.explanation.startswith("on host B, 'python B.py': byte 3 of ./out.txt differs")


def test_a_shell_running_a_pipeline_is_a_launcher() -> None:
    def direct() -> list:
        return [fork(10, 20), exe(("tr", "a", "b"), 20), fork(10, 21), exe(("sort",), 21), wait(10, 20), wait(10, 21)]

    def via_shell() -> list:
        return [fork(10, 30), exe(("/bin/sh", "-c", "tr a b < in.txt | sort > out.txt"), 30),
                fork(30, 31), exe(("tr", "a", "b"), 31), fork(30, 32), exe(("sort",), 32),
                wait(30, 31), wait(30, 32), wait(10, 30)]

    a, b = run(direct()), run(via_shell())
    assert b.programs and sorted(c.role for c in b.programs.children) == [("sort",), ("tr", "a", "b")]
    assert compare(a, b).verdict == "equivalent"


def test_partly_captured_payloads_compare_up_to_the_gap_then_by_length() -> None:
    def send(chunks: list[tuple[bytes, int]]) -> Obs:  # (captured payload, bytes the call really sent)
        evs = [sc("socket", 3, domain=2, type=1), sc("connect", 0, fd=3, addr="127.0.0.1:80")]
        evs += [SyscallSpan(h(), 0, "writev", n, {"fd": 3}, p, n) for p, n in chunks]
        return run(evs)

    whole = send([(b"HEAD", 4), (b"body", 4)])
    first_iov_only = send([(b"HE", 4), (b"body", 4)])  # writev: only its first iovec was captured
    c = first_iov_only.conversations["stream loopback:80"][0]
    assert c.gaps == {"sent": 2} and c.truncated
    v = compare(whole, first_iov_only)
    assert v.verdict == "equivalent" and 0 < v.confidence < 1
    longer = send([(b"HE", 5), (b"body", 4)])
    assert "8 vs 9 bytes" in compare(whole, longer).explanation


def test_a_program_exec_d_in_place_after_output_is_a_program_it_started() -> None:
    in_place = run([sc("write", 6, payload=b"built\n", fd=1), exe(("/bin/echo", "done"))], b"built\ndone\n")
    forked = run([sc("write", 6, payload=b"built\n", fd=1), fork(10, 20), exe(("echo", "done"), 20),
                  sc("write", 5, 20, b"done\n", fd=1), wait(10, 20)], b"built\ndone\n")
    assert in_place.programs and in_place.programs.role == ("prog",)
    assert [c.role for c in in_place.programs.children] == [("echo", "done")]
    assert compare(in_place, forked).verdict == "equivalent"
    launcher = run([exe(("python3", "p.py")), sc("write", 3, payload=b"hi\n", fd=1)], b"hi\n")
    assert launcher.programs and launcher.programs.role == ("python", "p.py") and not launcher.programs.children
