"""Compress input.txt into input.txt.gz with `gzip -9 -n -c` (no name, no timestamp: reproducible)."""
import subprocess

with open("input.txt.gz", "wb") as out:
    subprocess.run(["gzip", "-9", "-n", "-c", "input.txt"], stdout=out, check=True)
