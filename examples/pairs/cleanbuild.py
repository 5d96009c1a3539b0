"""Build dist/app.txt from per-line object files under build/obj/, then remove the whole build/ tree."""
import os
import shutil

os.makedirs("build/obj")
lines = open("input.txt").readlines()
for i, line in enumerate(lines):
    with open(f"build/obj/part{i}.o", "w") as f:
        f.write(line.upper())
os.makedirs("dist")
with open("dist/app.txt", "w") as out:
    for i in range(len(lines)):
        out.write(open(f"build/obj/part{i}.o").read())
shutil.rmtree("build")
