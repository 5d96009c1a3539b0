"""sysweave trace --gpu against a STAND-IN libcuda.so.1 (tests/fixtures/cuda_standin.c: the driver's symbols
and signatures, sleeping instead of computing; not NVIDIA's driver) and a driver-API program using it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cuda")
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", str(d / "libcuda.so.1"),
                    str(FIXTURES / "cuda_standin.c")], check=True)
    subprocess.run(["cc", "-O1", "-o", str(d / "cuda_app"), str(FIXTURES / "cuda_app.c"), f"-L{d}", "-l:libcuda.so.1",
                    f"-Wl,-rpath,{d}"], check=True)
    return d


@pytest.mark.bpf
def test_kernel_and_copy_spans_with_names_bytes_and_thresholds(app: Path) -> None:
    res = subprocess.run([*SYSWEAVE, "trace", "--no-store", "--format", "jsonl", "--gpu", "--cuda-lib",
                          str(app / "libcuda.so.1"), "--", str(app / "cuda_app")], capture_output=True, text=True,
                         timeout=180)
    assert res.returncode == 0, res.stderr
    assert "GPU layer" in res.stderr and "NVML" in res.stderr  # no GPU here: one line, tracing went on
    events = [json.loads(line) for line in res.stderr.splitlines() if line.startswith('{"event"')]
    kernels = [e for e in events if e["event"] == "GpuKernel"]
    copies = [e for e in events if e["event"] == "GpuMemoryTransfer"]
    # vecadd (300 µs, above 100 µs) x3 ship with their names and geometry; tiny (no sleep) x2 do not
    assert [(k["name"], k["grid"], k["block"], k["side"]) for k in kernels] == \
        [("vecadd", [4096, 1, 1], [256, 1, 1], "api")] * 3
    assert all(k["duration_ns"] >= 100_000 for k in kernels)
    # 16 MiB copies (~17 ms, above 1 ms) ship with direction and bytes; the 4 KiB DtoH does not
    assert [(c["kind"], c["bytes"]) for c in copies] == [("HTOD", 16 << 20), ("HTOD", 16 << 20), ("DTOH", 16 << 20)]
    pid = kernels[0]["pid"]
    assert all(e["pid"] == pid and e["tid"] == pid for e in kernels + copies)  # on the app's (only) thread
    order = [e["mono_ns"] for e in copies[:2] + kernels + copies[2:]]
    assert order == sorted(order)  # program order: HtoD, HtoD async, 3 launches, DtoH


@pytest.mark.bpf
def test_exact_driver_call_counts_in_the_summary(app: Path) -> None:
    res = subprocess.run([*SYSWEAVE, "trace", "-c", "--format", "json", "--no-store", "--gpu", "--cuda-lib",
                          str(app / "libcuda.so.1"), "--", str(app / "cuda_app")], capture_output=True, text=True,
                         timeout=180)
    assert res.returncode == 0, res.stderr
    calls = {f["function"]: f["calls"] for f in json.loads(res.stdout.strip().splitlines()[-1])["functions"]}
    assert calls == {"cuLaunchKernel": 5, "cuMemcpyHtoD_v2": 1, "cuMemcpyHtoDAsync_v2": 1, "cuMemcpyDtoH_v2": 2,
                     "cuModuleGetFunction": 2}


@pytest.mark.bpf
def test_no_driver_one_line_and_tracing_goes_on(tmp_path: Path) -> None:
    if subprocess.run(["sh", "-c", "ldconfig -p | grep -q libcuda.so.1"]).returncode == 0:
        pytest.skip("this machine has a CUDA driver")
    res = subprocess.run([*SYSWEAVE, "trace", "-c", "--format", "json", "--no-store", "--gpu", "--", "true"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stderr.splitlines() if "GPU" in line]
    assert len(lines) == 1 and lines[0].startswith("sysweave: GPU layer off: no libcuda.so.1") and "NVML" in lines[0]
    assert json.loads(res.stdout.strip().splitlines()[-1])["summary"]  # the syscalls were traced
