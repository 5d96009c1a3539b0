"""Exit with the status of `grep -q zebra input.txt` (1: not found), run as a child."""
import subprocess
import sys

sys.exit(subprocess.call(["grep", "-q", "zebra", "input.txt"]))
