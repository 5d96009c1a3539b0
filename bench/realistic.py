"""A realistic, syscall-heavy but not syscall-bound workload: tar + gzip source trees into memory,
then extract it into a temp dir and read every file back. Prints its own elapsed seconds (monotonic)."""

from __future__ import annotations

import io
import os
import sys
import tarfile
import tempfile
import time

srcs = sys.argv[1:]
t0 = time.monotonic()
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
    for i, src in enumerate(srcs):
        tar.add(src, arcname=f"tree{i}")
buf.seek(0)
with tempfile.TemporaryDirectory() as tmp:
    with tarfile.open(fileobj=buf, mode="r:gz") as tar:
        tar.extractall(tmp, filter="data")
    total = 0
    for root, _dirs, files in os.walk(tmp):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                total += len(fh.read())
print(f"elapsed {time.monotonic() - t0:.6f}", file=sys.stderr)
