"""Validation speed (issue 5's target: two 1,000,000-syscall traces compared in <= 3 s).

Synthesises two runs of 1,000,000 observable syscalls each (opens, 4 KiB writes and reads over 1,000 files,
closes, a few children), identical but for one byte in one file, and times Obs extraction + comparison.
Reports the median of R runs.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from sysweave.schemas.events import CausalStamp, EventHeader, SyscallSpan, make_event_id
from sysweave.validator.equivalence.compare import compare
from sysweave.validator.equivalence.filestate import read_state
from sysweave.validator.equivalence.observe import extract


def synth(workdir: str, n: int, flip: bool) -> list[SyscallSpan]:
    out: list[SyscallSpan] = []
    seq = 0
    payload = b"x" * 4096
    per_file = 8  # open + 6 writes + close
    for f in range(n // per_file):
        path = f"{workdir}/f{f % 1000}.txt"
        for name, ret, args in [("openat", 3, {"dirfd": -100, "path": path, "flags": 0o1101})] + \
                [("write", 4096, {"fd": 3})] * 6 + [("close", 0, {"fd": 3})]:
            seq += 1
            h = EventHeader(make_event_id(1, seq), "h", 10, 10, seq, seq, 100, CausalStamp(seq, 0))
            out.append(SyscallSpan(h, 0, name, ret, args, payload if name == "write" else None, ret))
    for i in range(1000):
        Path(workdir, f"f{i}.txt").write_bytes(b"y" * 100 + (b"!" if flip and i == 999 else b"y"))
    return out


def main(n: int = 1_000_000, runs: int = 3) -> None:
    times = []
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        ea, eb = synth(a, n, False), synth(b, n, True)
        for _ in range(runs):
            t0 = time.perf_counter()
            oa = extract(ea, a, 10, final_state=read_state)  # final states from disk, as the harness does
            ob = extract(eb, b, 10, final_state=read_state)
            verdict = compare(oa, ob)
            times.append(time.perf_counter() - t0)
        assert verdict.verdict == "divergent", verdict
    print(f"validate two {len(ea):,}-syscall traces: median {statistics.median(times):.2f} s of {runs} "
          f"(extract + compare; verdict: {verdict.explanation})")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
