"""Write out/report.txt by RELATIVE paths: a header, then (reopened in append mode) one line per input line."""
import os

os.makedirs("out", exist_ok=True)
with open("out/report.txt", "w") as f:
    f.write("report of input.txt\n")
with open("out/report.txt", "a") as f:
    for i, line in enumerate(open("input.txt"), 1):
        f.write(f"{i}: {len(line.split())} words\n")
