"""Atomically write settings.json (the names from names.txt as JSON): mkstemp in the workdir, write, chmod
0644, os.replace into place. Only settings.json survives."""
import json
import os
import tempfile

names = [n.strip() for n in open("names.txt") if n.strip()]
fd, tmp = tempfile.mkstemp(dir=".", prefix=".settings-", suffix=".tmp")
with os.fdopen(fd, "w") as f:
    json.dump({"users": names, "count": len(names)}, f, indent=2)
    f.write("\n")
os.chmod(tmp, 0o644)
os.replace(tmp, "settings.json")
