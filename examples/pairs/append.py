"""Append a line to the existing input.txt (an input modified in place)."""
with open("input.txt", "a") as f:
    f.write("appended by append.py\n")
