"""Count the lines of input.txt with `wc -l < input.txt` run through the shell; print "lines: N"."""
import subprocess

out = subprocess.run("wc -l < input.txt", shell=True, capture_output=True, text=True, check=True).stdout
print(f"lines: {int(out)}")
