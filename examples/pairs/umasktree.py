"""Under umask 027, create shared/logs/app.log and an executable shared/run.sh (chmod 0750)."""
import os

os.umask(0o027)
os.makedirs("shared/logs")
with open("shared/logs/app.log", "w") as f:
    f.write("started\n")
with open("shared/run.sh", "w") as f:
    f.write("#!/bin/sh\necho run\n")
os.chmod("shared/run.sh", 0o750)
