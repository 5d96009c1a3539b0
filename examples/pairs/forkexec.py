"""Run /bin/echo and /usr/bin/printf as children; their output goes straight to our stdout."""
import subprocess

subprocess.run(["/bin/echo", "build", "ok"], check=True)
subprocess.run(["/usr/bin/printf", "%s=%s\\n", "answer", "42"], check=True)
