"""Prints the integer average (rounded down) of the integers on stdin."""
import sys

numbers = [int(word) for word in sys.stdin.read().split()]
print(f"average: {sum(numbers) // len(numbers)}")
