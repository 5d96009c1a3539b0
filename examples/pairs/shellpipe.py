"""The vocabulary of input.txt as `tr -s ' \\n' '\\n' < input.txt | sort > vocab.txt`: two children joined
by a pipe."""
import subprocess

with open("input.txt") as src, open("vocab.txt", "w") as dst:
    tr = subprocess.Popen(["tr", "-s", " \n", "\n"], stdin=src, stdout=subprocess.PIPE)
    sort = subprocess.Popen(["sort"], stdin=tr.stdout, stdout=dst)
    tr.stdout.close()
    sort.wait()
    tr.wait()
