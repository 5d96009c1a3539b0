"""A validation whose capture loses ring-buffer records ends "could not decide" (exit 2), never a verdict:
the test hook SYSWEAVE_TEST_DROP_EVERY=N drops every Nth record of each run as an overrun would
(agents/sysweave/agents/bpf/syscalls.py), with real eBPF capture."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sysweave.agents.bpf.syscalls import TEST_DROP_ENV

SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]


def validate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = "sh -c 'echo hi > out.txt; cat out.txt'"
    return subprocess.run([*SYSWEAVE, "validate", "--original", cmd, "--transpiled", cmd, "--no-store", "--json"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def test_injected_ring_buffer_loss_is_undecided_after_bounded_reruns() -> None:
    lossy = validate({TEST_DROP_ENV: "3"})
    assert lossy.returncode == 2, lossy.stdout + lossy.stderr
    report = json.loads(lossy.stdout)
    assert report["verdict"] == "undecided" and [c["verdict"] for c in report["cases"]] == ["undecided"]
    assert report["reason"].startswith("could not decide: ") and "incomplete in all 3 runs" in report["reason"]
    assert "events lost (ringbuf_injected: " in report["reason"]
    assert lossy.stderr.count("running it again") == 2  # two reruns of the original, then no verdict
    clean = {k: v for k, v in os.environ.items() if k != TEST_DROP_ENV}
    same = subprocess.run(lossy.args, capture_output=True, text=True, timeout=300, env=clean)
    assert same.returncode == 0 and json.loads(same.stdout)["verdict"] == "equivalent"  # the hook, not the programs


def test_the_hook_refuses_a_bad_value() -> None:
    r = validate({TEST_DROP_ENV: "zero"})
    assert r.returncode == 2 and f"{TEST_DROP_ENV}='zero': must be a positive integer" in json.loads(r.stdout)["reason"]
