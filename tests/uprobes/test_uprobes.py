"""Function probes: the --uprobe grammar (pure), and sysweave trace --uprobe end to end (bpf)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sysweave.agents.bpf.uprobes_spec import FuncSpec, SpecError, parse_record, parse_spec, up_contract

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]


def test_spec_grammar() -> None:
    s = parse_spec("libm:cos(n=arg1),sin")
    assert s.library == "libm" and s.funcs == (FuncSpec("cos", False, (("n", 0),)), FuncSpec("sin"))
    assert parse_spec("/^vec_/").library is None and parse_spec("/^vec_/").funcs[0] == FuncSpec("^vec_", True)
    s = parse_spec("/usr/lib/x86_64-linux-gnu/libm.so.6:/^cos/(n=arg2,m=arg3)")
    assert s.library == "/usr/lib/x86_64-linux-gnu/libm.so.6" and s.funcs[0].args == (("n", 1), ("m", 2))
    for bad in ("libm:", "libm:cos(n=arg7)", "libm:/[/", "libm:co s", "libm:cos(n)"):
        with pytest.raises(SpecError):
            parse_spec(bad)


def test_record_layout_comes_from_the_header() -> None:
    c = up_contract()
    n_args, cap = c["UP_ARGS"], c["UP_STR_CAP"]
    import struct

    raw = struct.pack(f"<4I4Q{n_args}Q{cap}s", 41, 42, 3, 4, 1000, 2500, 0, 0xABC, *range(n_args), b"vec\0")
    call = parse_record(raw)
    assert (call.pid, call.tid, call.probe, call.ts, call.dur, call.deref) == (41, 42, 3, 1000, 2500, 0xABC)
    assert call.args == tuple(range(n_args)) and call.text == "vec"
    with pytest.raises(ValueError):
        parse_record(raw[:20])


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("uprobe")
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(d / "libuprobe_lib.so"), str(FIXTURES / "uprobe_lib.c")],
                   check=True)
    subprocess.run(["cc", "-O1", "-fno-inline", "-o", str(d / "uprobe_work"), str(FIXTURES / "uprobe_work.c"),
                    f"-L{d}", "-luprobe_lib", f"-Wl,-rpath,{d}"], check=True)
    return d


Run = subprocess.CompletedProcess[str]


def trace(work: Path, *uprobes: str, extra: tuple[str, ...] = ()) -> tuple[Run, list[dict[str, Any]]]:
    """sysweave trace --format jsonl: returns the run and the layer events printed."""
    args = [a for u in uprobes for a in ("--uprobe", u)]
    res = subprocess.run([*SYSWEAVE, "trace", "--no-store", "--format", "jsonl", *args, *extra, "--",
                          str(work / "uprobe_work"), "1000", "5", "2000"], capture_output=True, text=True, timeout=180,
                         cwd=work)
    events = [json.loads(line) for line in res.stderr.splitlines() if line.startswith('{"event"')]
    return res, events


def summary(work: Path, *uprobes: str) -> dict[str, dict[str, Any]]:
    args = [a for u in uprobes for a in ("--uprobe", u)]
    res = subprocess.run([*SYSWEAVE, "trace", "-c", "--format", "json", "--no-store", *args, "--",
                          str(work / "uprobe_work"), "1000", "5", "2000"], capture_output=True, text=True, timeout=180,
                         cwd=work)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    return {f["function"]: f for f in doc["functions"]}


@pytest.mark.bpf
def test_exact_counts_durations_and_only_slow_calls_shipped(work: Path) -> None:
    res, events = trace(work, "slow_step(n=arg1),fast_step", extra=("--compute-us", "1000"))
    assert res.returncode == 0, res.stderr
    shipped = [e for e in events if e["event"] == "ComputeBlock"]
    # only calls at or above the threshold ship; a fast call the scheduler preempted for >1 ms is one of them
    assert all(b["duration_ns"] >= 1_000_000 for b in shipped)
    assert sum(b["symbol"] == "fast_step" for b in shipped) <= 10  # of 1,000 calls of ~µs
    blocks = [b for b in shipped if b["symbol"] == "slow_step"]
    assert [b["elements"] for b in blocks] == [4096, 4097, 4098, 4099, 4100]
    assert all(b["source"] == "uprobe" and b["attrs"] == {"n": b["elements"]} for b in blocks)
    assert all(2_000_000 <= b["duration_ns"] < 50_000_000 for b in blocks)  # slept 2 ms each
    funcs = summary(work, "slow_step(n=arg1),fast_step")
    assert funcs["fast_step"]["calls"] == 1000 and funcs["slow_step"]["calls"] == 5
    assert 10_000_000 <= funcs["slow_step"]["total_ns"] < 250_000_000


@pytest.mark.bpf
def test_shared_library_function_by_path_and_libc_by_name(work: Path) -> None:
    funcs = summary(work, f"{work}/libuprobe_lib.so:lib_scale", "c:getpid")
    assert funcs["lib_scale"]["calls"] == 7 and funcs["lib_scale"]["library"].endswith("libuprobe_lib.so")
    assert funcs["getpid"]["calls"] == 100


@pytest.mark.bpf
def test_regex_matches_several_symbols(work: Path) -> None:
    funcs = summary(work, "/^vec_/")
    assert {k: v["calls"] for k, v in funcs.items()} == {"vec_add": 1, "vec_mul": 2, "vec_dot": 3}


@pytest.mark.bpf
def test_missing_symbol_is_a_clear_error(work: Path) -> None:
    res, _ = trace(work, "no_such_function")
    assert res.returncode == 1 and "no function 'no_such_function'" in res.stderr and "uprobe_work" in res.stderr
    res, _ = trace(work, "/^zzz_/")
    assert res.returncode == 1 and "no function matches /^zzz_/" in res.stderr
    res, _ = trace(work, "libnosuchlib:foo")
    assert res.returncode == 1 and "'libnosuchlib' not found" in res.stderr


def test_dump_bpf_prints_the_function_probe_program() -> None:
    res = subprocess.run([*SYSWEAVE, "trace", "--dump-bpf", "--uprobe", "libm:cos"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0
    assert "up_entry_" in res.stdout and "-DMAX_PROBES=" in res.stdout and "struct up_rec" in res.stdout


@pytest.mark.bpf
def test_summary_text_has_a_compute_block_section(work: Path) -> None:
    res = subprocess.run([*SYSWEAVE, "trace", "-c", "--no-store", "--uprobe", "/^vec_/", "--",
                          str(work / "uprobe_work"), "10", "1", "100"], capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr
    section = res.stderr.split("compute blocks (uprobes)", 1)[1]
    rows = {line.split()[-1]: int(line.split()[2]) for line in section.splitlines()[3:] if line.strip()}
    assert rows == {"vec_add": 1, "vec_mul": 2, "vec_dot": 3}
