"""Make work/sub, chdir into it, write result.txt and a symlink latest -> result.txt there, chdir back and
write done.txt."""
import os

os.makedirs("work/sub")
os.chdir("work/sub")
with open("result.txt", "w") as f:
    f.write("computed in work/sub\n")
os.symlink("result.txt", "latest")
os.chdir("../..")
with open("done.txt", "w") as f:
    f.write("ok\n")
