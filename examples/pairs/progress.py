"""For each line of input.txt print its word count on stdout and a progress line on stderr, interleaved;
"done" on stderr at the end."""
import sys

for i, line in enumerate(open("input.txt"), 1):
    print(len(line.split()), flush=True)
    print(f"progress: line {i}", file=sys.stderr, flush=True)
print("done", file=sys.stderr)
