"""Check an invariant on data.bin (its size must be a multiple of 7); report on stdout, complain on stderr
and abort (SIGABRT, no core file) when it does not hold."""
import os
import resource
import sys

resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
size = len(open("data.bin", "rb").read())
print(f"checked {size} bytes")
sys.stdout.flush()
if size % 7:
    print(f"invariant violated: {size} % 7 == {size % 7}", file=sys.stderr)
    os.abort()
print("ok")
