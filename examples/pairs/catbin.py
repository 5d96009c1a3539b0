"""Copy data.bin to stdout (binary)."""
import sys

sys.stdout.buffer.write(open("data.bin", "rb").read())
