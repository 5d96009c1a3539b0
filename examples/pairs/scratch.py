"""Spill the words of input.txt to a named scratch file in the workdir and to an anonymous temp file, read
them back, and write the distinct words, sorted, to words.txt. No temp file survives."""
import tempfile

words = open("input.txt").read().split()
with tempfile.NamedTemporaryFile("w+", dir=".", prefix="spill-") as spill:
    spill.write("\n".join(reversed(words)) + "\n")
    spill.flush()
    spill.seek(0)
    back = spill.read().split()
with tempfile.TemporaryFile("w+") as anon:
    anon.write(" ".join(back))
    anon.seek(0)
    final = anon.read().split()
with open("words.txt", "w") as out:
    out.write("\n".join(sorted(set(final))) + "\n")
