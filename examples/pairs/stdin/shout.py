"""Upper-cases each line of stdin and prints it with its length in characters."""
import sys

for line in sys.stdin:
    text = line.rstrip("\n")
    print(f"{len(text):3} {text.upper()}")
