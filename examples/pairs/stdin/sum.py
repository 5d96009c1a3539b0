"""Adds up the integers on stdin (every run of digits, with its minus sign) and prints their count and total."""
import re
import sys

numbers = [int(token) for token in re.findall(rb"-?[0-9]+", sys.stdin.buffer.read())]
print(f"count: {len(numbers)}")
print(f"total: {sum(numbers)}")
