"""Count lines, words and bytes of input.txt; write them to counts.txt; print the word total."""
with open("input.txt", "rb") as f:
    data = f.read()
lines, words = data.count(b"\n"), len(data.split())
with open("counts.txt", "w") as out:
    out.write(f"{lines} {words} {len(data)}\n")
print(f"total words: {words}")
