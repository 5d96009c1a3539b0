"""Prints the largest integer on stdin."""
import sys

print(f"largest: {max(int(word) for word in sys.stdin.read().split())}")
