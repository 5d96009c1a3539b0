"""The SDK socket end to end in one process: credentials, bad datagrams counted, drops reported, no-op when untraced;
the decision log reader; the SDK stands alone (standard library only)."""

from __future__ import annotations

import ast
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sysweave import sdk
from sysweave.agents.decisions import DecisionLogError, decision_events, parse_decision_log, read_decision_log
from sysweave.agents.sdk_server import MAX_DATAGRAM, SdkServer
from sysweave.schemas import codec
from sysweave.schemas.events import ComputeBlock, Event, Mark, TranspilerDecision

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[SdkServer, list[Event]]]:
    got: list[Event] = []
    srv = SdkServer(got.append, "host-t", 123, directory=str(tmp_path))
    yield srv, got
    srv.close()
    sdk.connect("")


def wait_for(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.01)


def test_socket_is_private_and_removed(server: tuple[SdkServer, list[Event]]) -> None:
    srv, _ = server
    assert stat.S_IMODE(os.stat(srv.dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(srv.path).st_mode) == 0o600
    assert srv.env() == {"SYSWEAVE_SDK_SOCKET": srv.path}
    srv.close()
    assert not os.path.exists(srv.dir)


def test_events_carry_the_kernel_pid_and_the_thread(server: tuple[SdkServer, list[Event]]) -> None:
    srv, got = server
    srv.start()
    assert sdk.connect(srv.path) and sdk.enabled()
    tids: list[int] = []

    def work() -> None:
        tids.append(threading.get_native_id())
        with sdk.compute_block("in thread", op="loop", elements=3):
            time.sleep(0.001)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    sdk.transpiler_decision("D9", "ownership", "borrow", target_symbol="f")
    sdk.mark("phase", n=1)
    wait_for(lambda: len(got) == 3)
    block, decision, mark = got
    assert isinstance(block, ComputeBlock) and isinstance(decision, TranspilerDecision) and isinstance(mark, Mark)
    assert {e.h.pid for e in got} == {os.getpid()} and block.h.tid == tids[0] != os.getpid()
    assert block.h.duration_ns >= 1_000_000 and block.h.wall_ns == block.h.mono_ns + 123
    assert decision.h.tid == mark.h.tid == threading.get_native_id()
    assert block.h.mono_ns < decision.h.mono_ns < mark.h.mono_ns <= time.monotonic_ns()
    assert len({e.h.event_id for e in got}) == 3 and srv.lost == {}


def test_a_forked_child_reports_its_own_pid_and_thread(server: tuple[SdkServer, list[Event]]) -> None:
    srv, got = server
    srv.start()
    sdk.connect(srv.path)
    sdk.mark("parent")  # caches the parent's thread id
    child = os.fork()
    if child == 0:
        sdk.mark("child")
        os._exit(0 if sdk.stats()["sent"] == 1 else 3)  # the child counts its own datagrams only
    assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0
    wait_for(lambda: len(got) == 2)
    ids = {e.name: (e.h.pid, e.h.tid) for e in got if isinstance(e, Mark)}
    assert ids == {"parent": (os.getpid(), threading.get_native_id()), "child": (child, child)}


def test_bad_datagrams_are_counted_and_the_server_goes_on(server: tuple[SdkServer, list[Event]]) -> None:
    srv, got = server
    srv.start()
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    raw.connect(srv.path)
    for junk in (b"", b"\xff" * 10, b"\x92\x01\x9f", os.urandom(300)):
        raw.send(junk)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    raw.send(b"\x00" * (MAX_DATAGRAM + 100))
    sdk.connect(srv.path)
    sdk.mark("still alive")
    wait_for(lambda: len(got) == 1)
    srv.close()
    assert [e.name for e in got if isinstance(e, Mark)] == ["still alive"]
    assert srv.lost == {"sdk_malformed": 4, "sdk_oversized": 1}
    assert srv.errors["sdk_malformed"][0].startswith(f"pid {os.getpid()}: datagram")
    lost = {e.source: e for e in srv.lost_events(os.getpid(), 1, 2)}
    assert lost["sdk_malformed"].count == 4 and "not valid msgpack" in lost["sdk_malformed"].detail
    raw.close()


def test_a_failing_sink_is_counted_and_the_receiver_goes_on(tmp_path: Path) -> None:
    got: list[Event] = []

    def sink(e: Event) -> None:
        if isinstance(e, Mark) and e.name == "bad":
            raise RuntimeError("disk full")
        got.append(e)

    srv = SdkServer(sink, "h", 0, directory=str(tmp_path)).start()
    try:
        sdk.connect(srv.path)
        sdk.mark("bad")
        sdk.mark("good")
        wait_for(lambda: len(got) == 1)
    finally:
        srv.close()
        sdk.connect("")
    assert [e.name for e in got if isinstance(e, Mark)] == ["good"]
    assert srv.lost == {"sdk_sink_error": 1} and "disk full" in srv.errors["sdk_sink_error"][0]


def test_what_the_sdk_drops_is_reported_once_it_gets_through(server: tuple[SdkServer, list[Event]]) -> None:
    srv, got = server  # not started: nothing reads, the socket's queue fills
    sdk.connect(srv.path)
    for i in range(3000):
        sdk.mark("burst", i=i)
    dropped = sdk.stats()["dropped"].get("receiver_full", 0)
    assert dropped > 0 and sdk.stats()["sent"] + dropped == 3000
    srv.start()
    wait_for(lambda: len(got) == sdk.stats()["sent"])
    sdk.mark("after")  # gets through, then reports the drops
    wait_for(lambda: srv.lost.get("sdk_sender", 0) == dropped)
    assert srv.lost == {"sdk_sender": dropped} and sdk.stats()["unreported"] == 0


def test_unreachable_tracer_is_counted_not_raised(tmp_path: Path) -> None:
    assert sdk.connect(str(tmp_path / "nobody-listens"))
    with sdk.compute_block("x"):
        pass
    sdk.mark("m")
    assert sdk.stats()["dropped"] == {"unreachable": 2}
    sdk.connect("")


def test_untraced_calls_are_no_ops() -> None:
    sdk.connect("")
    assert not sdk.enabled()

    def f(x: int) -> int:
        return x + 1

    assert sdk.compute_block("n")(f) is f and sdk.compute_block(f) is f  # decorators return the function itself
    with sdk.compute_block("n", op="gemm", elements=5) as value:
        assert not value
    with pytest.raises(KeyError), sdk.compute_block("n"):  # exceptions pass through the no-op
        raise KeyError("k")
    assert sdk.transpiler_decision("D") is None and sdk.mark("m", a=1) is None
    assert sdk.stats() == {"enabled": False, "sent": 0, "dropped": {}, "unreported": 0}


def test_decision_log_reports_bad_lines_by_number(tmp_path: Path) -> None:
    text = "\n".join([
        '{"id": "D1", "kind": "loop-vectorised", "chosen": "simd x8", "alternatives": ["scalar"], '
        '"source_location": "wc.py:12", "target_symbol": "count_words", "attrs": {"width": 8, "gain": 2.5, "l": [1]}}',
        "{not json",
        "",
        '{"id": "D2", "kynd": "typo"}',
        '["an", "array"]',
        '{"kind": "no id"}',
        '{"id": "D3", "alternatives": "scalar"}',
        '{"id": "D4", "attrs": {"nested": {"a": 1}}}',
        '{"id": "D5"}',
    ])
    log = parse_decision_log(text)
    assert [r["id"] for r in log.records] == ["D1", "D5"]
    assert [b.line for b in log.bad] == [2, 4, 5, 6, 7, 8]
    msgs = {b.line: b.message for b in log.bad}
    assert "not JSON" in msgs[2] and "unknown field 'kynd'" in msgs[4] and "JSON object" in msgs[5]
    assert "'id' is required" in msgs[6] and "list of strings" in msgs[7] and "attrs.nested" in msgs[8]
    assert log.records[0]["attrs"] == {"width": 8, "gain": "2.5", "l": (1,)}
    events = decision_events(log.records, "h", 77, 1000, 5, producer_id=1)
    assert [(e.decision_id, e.source, e.h.pid, e.h.tid, e.h.mono_ns, e.h.wall_ns) for e in events] == \
        [("D1", "log", 77, 77, 1000, 1005), ("D5", "log", 77, 77, 1000, 1005)]
    assert events[0].alternatives == ("scalar",) and events[0].target_symbol == "count_words"
    with pytest.raises(DecisionLogError, match="No such file"):
        read_decision_log(str(tmp_path / "missing.jsonl"))
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe")
    with pytest.raises(DecisionLogError, match="UTF-8"):
        read_decision_log(str(tmp_path / "bin.jsonl"))


def test_the_sdk_stands_alone_on_the_standard_library() -> None:
    """Importable with nothing but agents/sdk on the path, and it loads nothing outside the standard library."""
    code = ("import sys; sys.path[:] = [p for p in sys.path if 'site-packages' not in p and 'work/main' not in p]; "
            f"sys.path.insert(0, {str(ROOT / 'agents' / 'sdk')!r}); "
            "import sysweave.sdk as s; "
            "outside = sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names "
            "and m not in ('sysweave', 'sysweave.sdk', '__main__') and not m.startswith('sysweave.sdk.')); "
            "print(s.enabled(), outside)")
    env = {k: v for k, v in os.environ.items() if k not in ("SYSWEAVE_SDK_SOCKET", "PYTHONPATH")}
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "False []"
    for source in (ROOT / "agents" / "sdk" / "sysweave" / "sdk").glob("*.py"):  # the package and its private parts
        tree = ast.parse(source.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} | \
            {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert all(m.split(".")[0] in sys.stdlib_module_names or m == "__future__" or m.startswith("sysweave.sdk.")
                   for m in imported), (source.name, imported)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=8)
decision_like = st.dictionaries(st.sampled_from(["id", "kind", "chosen", "alternatives", "reason", "source_location",
                                                 "target_symbol", "attrs", "other"]), json_values, max_size=6)


@settings(max_examples=300)
@given(st.lists(st.one_of(st.text(max_size=40), decision_like.map(json.dumps)), max_size=8))
def test_any_log_text_parses_into_records_and_numbered_bad_lines(lines: list[str]) -> None:
    text = "\n".join(x.replace("\n", " ").replace("\r", " ") for x in lines)
    log = parse_decision_log(text)
    numbered = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    assert len(log.records) + len(log.bad) == len(numbered)
    assert {b.line for b in log.bad} <= set(numbered)
    events = decision_events(log.records, "h", 1, 1, 0, producer_id=1)
    for e in events:  # every accepted record is a valid wire event
        assert codec.decode_event(codec.encode_event(e)) == e
