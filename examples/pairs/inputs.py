"""Print the names in names.txt on one line, comma-separated."""
names = [n.strip() for n in open("names.txt") if n.strip()]
print(", ".join(names))
