"""Record the shutdown phase in state.txt, say so, then terminate ourselves with SIGTERM."""
import os
import signal

with open("state.txt", "w") as f:
    f.write("phase=shutdown\n")
print("terminating", flush=True)
os.kill(os.getpid(), signal.SIGTERM)
print("unreachable")
