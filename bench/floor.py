"""Run a command with the empty floor programs attached: python bench/floor.py -- CMD..."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bcc import BPF

if __name__ == "__main__":
    argv = sys.argv[sys.argv.index("--") + 1:]
    bpf = BPF(text=(Path(__file__).parent / "floor.bpf.c").read_text(), cflags=["-w"])
    code = subprocess.call(argv)
    bpf.cleanup()
    sys.exit(code)
