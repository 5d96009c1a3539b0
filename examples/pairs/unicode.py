"""For each line of unicode.txt (UTF-8), write the line, a tab and its length in characters (code points) to
lengths.txt; print the total number of characters."""
total = 0
with open("unicode.txt", encoding="utf-8") as src, open("lengths.txt", "w", encoding="utf-8") as out:
    for line in src:
        line = line.rstrip("\n")
        total += len(line)
        out.write(f"{line}\t{len(line)}\n")
print(total)
