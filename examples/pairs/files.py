"""Make out/, write out/data.txt, rename it to out/final.txt, and use a scratch file that is deleted."""
import os

os.mkdir("out")
with open("scratch.tmp", "w") as t:
    t.write("scratch\n")
with open("out/data.txt", "w") as f:
    for i in range(50):
        f.write(f"record {i}\n")
os.rename("out/data.txt", "out/final.txt")
os.unlink("scratch.tmp")
