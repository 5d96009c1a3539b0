"""Kernel-assigned ports named by role and rank (issue 17.3), with real eBPF: two UDP receivers on bind(0); a
program that sends "a" to the first and "b" to the second, against one that swaps them. Under one shared name
("ephemeral") both sent "a", "b" to the same endpoint; by rank they differ, and two runs whose kernel gave other
port numbers but used them in the same roles stay equivalent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]

SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]
PROGRAM = '''
import socket
first, second = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
for r in (first, second):
    r.bind(("127.0.0.1", 0))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"a", (FIRST).getsockname())
s.sendto(b"b", (SECOND).getsockname())
first.recv(10), second.recv(10)
print("sent and received")
'''


def _validate(tmp: Path, b_swapped: bool) -> dict:
    (tmp / "a.py").write_text(PROGRAM.replace("FIRST", "first").replace("SECOND", "second"))
    (tmp / "b.py").write_text(PROGRAM.replace("FIRST", "second" if b_swapped else "first")
                              .replace("SECOND", "first" if b_swapped else "second"))
    r = subprocess.run([*SYSWEAVE, "validate", "--original", f"{sys.executable} {tmp / 'a.py'}", "--transpiled",
                        f"{sys.executable} {tmp / 'b.py'}", "--workdir", str(tmp), "--json", "--no-store"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return json.loads(r.stdout)


def test_ports_in_the_same_roles_are_equivalent(tmp_path: Path) -> None:
    report = _validate(tmp_path, b_swapped=False)
    assert report["verdict"] == "equivalent", report["reason"]


def test_ports_in_swapped_roles_are_divergent(tmp_path: Path) -> None:
    report = _validate(tmp_path, b_swapped=True)
    assert report["verdict"] == "divergent", report["reason"]
    assert "udp to loopback:ephemeral-bind#1" in report["reason"], report["reason"]
