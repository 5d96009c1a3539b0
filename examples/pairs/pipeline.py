"""Sort the words of input.txt with the system's sort(1) through a pipe; write sorted.txt."""
import subprocess

words = open("input.txt").read().split()
res = subprocess.run(["sort"], input="\n".join(words) + "\n", capture_output=True, text=True, check=True)
with open("sorted.txt", "w") as f:
    f.write(res.stdout)
print(len(words))
