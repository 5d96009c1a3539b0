"""Start a worker (`sleep 30`), stop it with SIGTERM, wait for it and say so."""
import signal
import subprocess

worker = subprocess.Popen(["sleep", "30"])
worker.send_signal(signal.SIGTERM)
worker.wait()
print("worker stopped")
