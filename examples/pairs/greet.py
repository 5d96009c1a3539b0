"""Greet every name in names.txt; the exit code is the number of names."""
import sys

names = [n.strip() for n in open("names.txt") if n.strip()]
for n in names:
    print(f"hello, {n}!")
sys.exit(len(names))
