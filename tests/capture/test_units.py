"""Pure parts of capture: record decoding, -e expressions, rendering, summaries, the strace parser, queues."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sysweave.agents.bpf.contract import contract
from sysweave.agents.ptrace_backend import StraceParser, unescape
from sysweave.agents.queues import DropQueue
from sysweave.agents.records import (
    EA_ARGV_FAULT,
    EA_ARGV_TRUNCATED,
    EA_PATH_FAULT,
    REC_EXEC,
    REC_EXEC_ARGS,
    REC_SYSCALL,
    RecordDecoder,
    decode_sockaddr,
    exec_identity,
)
from sysweave.agents.syscall_args import CLASSES, NR_BY_NAME
from sysweave.cli.filters import FilterError, parse_trace_expr
from sysweave.cli.render import LineStyle, hist_quantile, render_line, summarize
from sysweave.schemas.events import ProcessEvent, SyscallAggregate, SyscallSpan

PATH_CAP = 256


def record(rtype: int, nr: int, ret: int, args: tuple[int, ...] = (0,) * 6, d1: bytes = b"", d2: bytes = b"",
           aux: int = 0, pid: int = 10, tid: int = 10, reason: int = 0) -> bytes:
    """A ring-buffer record packed by field name from syscalls.h's struct rec (test_contract checks that layout)."""
    fmt, names = contract().fixed_prefix("rec")
    values = {"type": rtype, "pid": pid, "tid": tid, "nr": nr, "ts": 1000, "dur": 50, "ret": ret, "reason": reason,
              "len1": len(d1), "len2": len(d2), "aux": aux, **{f"args{i}": a for i, a in enumerate(args)}}
    return fmt.pack(*(values[n] for n in names)) + d1.ljust(PATH_CAP, b"\0") + d2


def decoder() -> RecordDecoder:
    return RecordDecoder("h", 1, 10**18, PATH_CAP)


def test_decode_openat_failure() -> None:
    raw = record(REC_SYSCALL, NR_BY_NAME["openat"], -2, (2**32 - 100, 0, 0o2000000, 0, 0, 0), d1=b"/nope\0")
    (span,) = list(decoder().decode(raw))
    assert isinstance(span, SyscallSpan) and span.name == "openat" and span.errno == 2
    assert span.args["dirfd"] == -100 and span.args["path"] == "/nope"
    expected = 'openat(AT_FDCWD, "/nope", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)'
    assert render_line(span, LineStyle()) == expected


def test_decode_write_payload_and_truncation_marker() -> None:
    raw = record(REC_SYSCALL, NR_BY_NAME["write"], 10000, (1, 0, 10000, 0, 0, 0), d2=b"x" * 4096)
    (span,) = list(decoder().decode(raw))
    assert span.payload == b"x" * 4096 and span.payload_len == 10000  # captured < written: truncated


def test_exec_pairs_argv_with_the_successful_exec() -> None:
    d = decoder()
    assert list(d.decode(record(REC_EXEC_ARGS, 59, 0, d1=b"/bin/ls\0", d2=b"ls\0-l\0", aux=2))) == []
    (ev,) = list(d.decode(record(REC_EXEC, 0, 0, d1=b"/usr/bin/ls\0", aux=10)))
    assert isinstance(ev, ProcessEvent) and ev.argv == ("ls", "-l") and ev.filename == "/usr/bin/ls"
    (span,) = list(d.decode(record(REC_SYSCALL, 59, 0)))
    assert span.args == {"path": "/bin/ls", "argv": ("ls", "-l")}


def test_exec_takes_what_sys_enter_could_not_read_from_the_new_image() -> None:
    d = decoder()
    # a fork child's literals: nothing readable at sys_enter; the exec tracepoint has the image's argv (argc=2)
    assert list(d.decode(record(REC_EXEC_ARGS, 59, 0, reason=EA_PATH_FAULT | EA_ARGV_FAULT))) == []
    (ev,) = list(d.decode(record(REC_EXEC, 0, 0, (2, 0, 0, 0, 0, 0), d1=b"/bin/echo\0", d2=b"/bin/echo\0hi\0", aux=10)))
    assert isinstance(ev, ProcessEvent) and ev.argv == ("/bin/echo", "hi")
    (span,) = list(d.decode(record(REC_SYSCALL, 59, 0)))
    assert span.args == {"path": "/bin/echo", "argv": ("/bin/echo", "hi")}


def test_a_failed_exec_keeps_what_sys_enter_read_and_the_filename_reread_at_exit() -> None:
    d = decoder()
    list(d.decode(record(REC_EXEC_ARGS, 59, 0, d2=b"echo\0hi\0", aux=2, reason=EA_PATH_FAULT)))
    (span,) = list(d.decode(record(REC_SYSCALL, 59, -2, d1=b"/no/echo\0")))
    assert span.errno == 2 and span.args == {"path": "/no/echo", "argv": ("echo", "hi")}


def test_exec_identity_prefers_what_the_caller_passed() -> None:
    image = ("/bin/sh", "./s.sh", "a")  # a #! script's image: the interpreter first
    assert exec_identity("./s.sh", image, ("./s.sh", ("./s.sh", "a"), 0)) == ("./s.sh", ("./s.sh", "a"))
    assert exec_identity("/bin/x", ("x", "y"), ("", (), EA_PATH_FAULT | EA_ARGV_FAULT)) == ("/bin/x", ("x", "y"))
    many = tuple(f"a{i}" for i in range(30))
    assert exec_identity("/bin/x", many, ("/bin/x", many[:20], EA_ARGV_TRUNCATED)) == ("/bin/x", many)
    assert exec_identity("/bin/x", ("x",), None) == ("/bin/x", ("x",))


def test_short_record_is_counted_not_raised() -> None:
    d = decoder()
    assert list(d.decode(b"\x01\x02")) == [] and d.bad_records == 1


def test_sockaddrs() -> None:
    assert decode_sockaddr(struct.pack("<H", 2) + (8080).to_bytes(2, "big") + bytes([127, 0, 0, 1])) == "127.0.0.1:8080"
    assert decode_sockaddr(struct.pack("<H", 1) + b"/run/x.sock\0") == "unix:/run/x.sock"
    v6 = struct.pack("<H", 10) + (443).to_bytes(2, "big") + b"\0" * 4 + b"\0" * 15 + b"\1"
    assert decode_sockaddr(v6) == "[::1]:443"


def test_trace_expressions() -> None:
    assert parse_trace_expr("trace=openat,close") == {"openat", "close"}
    assert parse_trace_expr("openat") == {"openat"}
    assert "connect" in parse_trace_expr("trace=%network")
    assert "openat" not in parse_trace_expr("trace=!openat") and "read" in parse_trace_expr("trace=!openat")
    assert parse_trace_expr("trace=/^pread") == {"pread64", "preadv", "preadv2"}
    for bad, token in [("trace=nope", "'nope'"), ("trace=%bogus", "%bogus"), ("signal=all", "signal"), ("trace=/(", "(")]:
        with pytest.raises(FilterError, match=token.replace("(", r"\(")):
            parse_trace_expr(bad)
    assert all(CLASSES[c] for c in ("file", "network", "process", "memory", "signal", "desc"))


def _agg(pid: int, name: str, calls: int, errors: int, total: int, bucket: int) -> SyscallAggregate:
    from sysweave.schemas.events import EventHeader

    hist = [0] * 40
    hist[bucket] = calls
    return SyscallAggregate(EventHeader(b"\0" * 16, "h", pid, pid, 0, 0), 0, name, calls, errors, total, tuple(hist))


def test_summary_merges_processes_sorted_by_time() -> None:
    rows = summarize([_agg(1, "read", 10, 0, 100, 3), _agg(2, "read", 5, 1, 50, 3), _agg(1, "write", 1, 0, 1000, 9),
                      _agg(1, "exit_group", 1, 0, 0, 0)])
    assert [(r.syscall, r.calls, r.errors, r.total_ns) for r in rows] == [("write", 1, 0, 1000), ("read", 15, 1, 150)]


@given(st.integers(0, 39), st.integers(1, 1000))
def test_histogram_quantile_within_sqrt2(bucket: int, n: int) -> None:
    hist = [0] * 40
    hist[bucket] = n
    q = hist_quantile(hist, 0.5)
    assert 2**bucket <= q <= 2 ** (bucket + 1)


STRACE_LINES = """\
100 1700000000.000100 openat(AT_FDCWD, "\\x2f\\x6e\\x6f", O_RDONLY) = -1 ENOENT (No such file or directory) <0.000010>
100 1700000000.000200 write(1, "\\x68\\x69\\x0a", 3) = 3 <0.000005>
100 1700000000.000300 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD <unfinished ...>
101 1700000000.000310 write(1, "\\x78", 1) = 1 <0.000002>
100 1700000000.000400 <... clone resumed>, child_tidptr=0x7f) = 101 <0.000100>
101 1700000000.000500 exit_group(3) = ?
101 1700000000.000600 +++ exited with 3 +++
100 1700000000.000700 --- SIGCHLD {si_signo=SIGCHLD} ---
"""


def test_strace_parser_joins_unfinished_and_counts() -> None:
    p = StraceParser("h", 1)
    events = [e for line in STRACE_LINES.splitlines() for e in p.parse(line)]
    spans = [e for e in events if isinstance(e, SyscallSpan)]
    assert [s.name for s in spans] == ["openat", "write", "write", "clone", "exit_group"]
    assert spans[0].ret == -2 and spans[0].args["path"] == "/no" and spans[0].h.duration_ns == 10_000
    assert spans[1].payload == b"hi\n" and spans[3].ret == 101
    forks = [e for e in events if isinstance(e, ProcessEvent)]
    assert [(f.type.name, f.child_pid, f.exit_code) for f in forks] == [("FORK", 101, None), ("EXIT", 0, 3)]
    aggs = {(a.h.pid, a.name): (a.calls, a.errors) for a in p.aggregates()}
    assert aggs[(100, "openat")] == (1, 1) and aggs[(101, "write")] == (1, 0)
    assert p.unparsed == 0


def test_unescape() -> None:
    assert unescape(r"\x41\x42\n\"") == b'AB\n"'


def test_drop_queue_counts_drops_and_wakes_on_close() -> None:
    q: DropQueue[int] = DropQueue(3)
    assert [q.put(i) for i in range(5)] == [True, True, True, False, False]
    assert q.dropped == 2 and q.get_batch(10, 0.01) == [0, 1, 2]
    q.close()
    assert q.get_batch(10, 5) == []  # returns at once once closed


def test_the_core_build_spells_bcc_map_calls_as_libbpf_helpers() -> None:
    from sysweave.agents.bpf.build import core_text

    src = ("u8 *t = targets.lookup(&k); if (agg_slots.insert(&k, &v) != 0) x = f(targets.lookup(&j));\n"
           "struct s *p = starts.task_storage_get((struct task_struct *)cur(), 0, F);\n"
           "targets.update(&c, &m); events.ringbuf_output(r, size, BPF_RB_NO_WAKEUP);")
    assert core_text(src) == (
        "u8 *t = bpf_map_lookup_elem(&targets, &k); if (bpf_map_update_elem(&agg_slots, &k, &v, BPF_NOEXIST) != 0) "
        "x = f(bpf_map_lookup_elem(&targets, &j));\n"
        "struct s *p = bpf_task_storage_get(&starts, (struct task_struct *)cur(), 0, F);\n"
        "bpf_map_update_elem(&targets, &c, &m, BPF_ANY); bpf_ringbuf_output(&events, r, size, BPF_RB_NO_WAKEUP);")


def test_without_the_core_object_capture_falls_back_to_bcc_and_says_so_in_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from sysweave.agents.bpf import capture_setup, libbpf_object

    monkeypatch.setattr(libbpf_object, "core_object_problem", lambda name: f"{name}.bpf.o was not built")
    monkeypatch.setenv(libbpf_object.LOADER_ENV, "auto")
    assert capture_setup.loader(capture_setup.ProbeConfig()) == ("bcc", "syscalls.bpf.o was not built")
    capture_setup.say_fallback("syscalls.bpf.o was not built")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bcc" in err and "syscalls.bpf.o was not built" in err
    monkeypatch.setenv(libbpf_object.LOADER_ENV, "libbpf")  # required: an error naming why, never a silent bcc
    with pytest.raises(libbpf_object.ObjectError, match="was not built"):
        capture_setup.loader(capture_setup.ProbeConfig())
    monkeypatch.setenv(libbpf_object.LOADER_ENV, "llvm")
    with pytest.raises(libbpf_object.ObjectError, match="expected auto, libbpf or bcc"):
        capture_setup.loader(capture_setup.ProbeConfig())


def test_a_payload_cap_above_the_core_objects_bound_uses_bcc() -> None:
    from sysweave.agents.bpf.capture_setup import CORE_PARAMS, ProbeConfig

    assert ProbeConfig(payload_cap=CORE_PARAMS["PAYLOAD_CAP"]).core_mismatch() is None
    assert "above" in (ProbeConfig(payload_cap=2 * CORE_PARAMS["PAYLOAD_CAP"]).core_mismatch() or "")
    with pytest.raises(ValueError, match="multiple of 64"):
        ProbeConfig(max_agg=100).cflags()
