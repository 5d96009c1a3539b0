"""Print names.txt in reverse order with sort(1) in the C locale, launched through env(1)."""
import subprocess
import sys

res = subprocess.run(["env", "LC_ALL=C", "sort", "-r", "names.txt"], capture_output=True, check=True)
sys.stdout.buffer.write(res.stdout)
