"""Lay out releases/v1 and releases/v2 (each with a VERSION file) and point the symlink current -> releases/v2."""
import os

for v, text in (("v1", "version one\n"), ("v2", "version two\n")):
    os.makedirs(f"releases/{v}")
    with open(f"releases/{v}/VERSION", "w") as f:
        f.write(text)
os.symlink("releases/v2", "current")
