"""The validator's capture, wired from the agents' eBPF backend (the CLI is the only place both meet)."""

from __future__ import annotations

import subprocess
from typing import IO

from sysweave.agents.bpf.syscalls import ProbeConfig, SyscallProbe
from sysweave.agents.session import CaptureOptions, EbpfCapture
from sysweave.schemas.events import Event
from sysweave.validator.equivalence.harness import CapturedRun

__all__ = ["VALIDATION_RINGBUF_PAGES", "EbpfRunner"]


# A validation ships every observable call with up to 16 KiB of payload: a program printing 12,000 unbuffered
# lines overran the default 4 MiB ring between two drains (examples/pairs/bigout lost ~7,000 records).
# 32 MiB holds such a burst whole; what still overruns it makes the run repeat, then "could not decide".
VALIDATION_RINGBUF_PAGES = 8192


class EbpfRunner:
    """One compiled probe reused for every run of a validation (compiling is the slow part)."""

    def __init__(self, capture_bytes: int = 16384) -> None:
        self.probe = SyscallProbe(ProbeConfig(payload_cap=capture_bytes, ringbuf_pages=VALIDATION_RINGBUF_PAGES))
        self.options = CaptureOptions(follow=True, observable=True, payload_cap=capture_bytes)

    def run(self, argv: list[str], cwd: str, timeout_s: float, stdout: IO[bytes], stderr: IO[bytes],
            stdin: IO[bytes] | None = None, env: dict[str, str] | None = None) -> CapturedRun:
        events: list[Event] = []
        cap = EbpfCapture(self.options, events.append, probe=self.probe)
        res = cap.run_command(argv, env=env, cwd=cwd, timeout_s=timeout_s, stdout=stdout, stderr=stderr,
                              stdin=stdin if stdin is not None else subprocess.DEVNULL, kill_leftovers=True,
                              private_tmp=True)  # each run its own /tmp: two runs never share a file outside the workdir
        return CapturedRun(res.exit_code, res.root_pid, events + res.aggregates + res.extra_events, res.aggregates,
                           res.lost, res.backend, res.wall_s, res.cpu_s, res.max_rss_kb, res.timed_out,
                           res.interrupted, res.accounting)

    def close(self) -> None:
        self.probe.close()
