"""Run a command under bcc's syscount -L (exact counts and latency, bcc's own tool): the comparison row of
bench/trace_overhead.py.  ``python bench/syscount_run.py -- CMD...``: the command's process is forked and held
until ``syscount -L -p PID`` has attached, then it execs CMD (same pid), and syscount is stopped (SIGINT) when
it exits.  (``-c PPID`` would filter by parent, reading task->real_parent in every call: a dearer filter.)"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

__all__ = ["SYSCOUNT"]

SYSCOUNT = shutil.which("syscount-bpfcc") or "/usr/sbin/syscount-bpfcc"

if __name__ == "__main__":
    argv = sys.argv[sys.argv.index("--") + 1:]
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the command: wait for syscount, then exec
        os.close(go_w)
        os.read(go_r, 1)
        os.execvp(argv[0], argv)
    os.close(go_r)
    tool = subprocess.Popen([SYSCOUNT, "-L", "-p", str(pid)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert tool.stdout is not None
    line = tool.stdout.readline()  # "Tracing syscalls, ..." once its programs are attached
    os.write(go_w, b"x")
    _, status = os.waitpid(pid, 0)
    tool.send_signal(signal.SIGINT)
    tool.communicate(timeout=60)
    if not line.startswith("Tracing"):
        sys.exit(f"syscount did not start: {line!r}")
    sys.exit(os.waitstatus_to_exitcode(status))
