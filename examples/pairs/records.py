"""Write table.dat: one fixed-width 16-byte record per name in names.txt ("0000 ada       \n"), in order."""
names = [n.strip() for n in open("names.txt") if n.strip()]
with open("table.dat", "w") as f:
    for i, n in enumerate(names):
        f.write(f"{i:04d} {n:<10.10}\n")
