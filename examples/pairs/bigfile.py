"""Write big.bin, 300,000 bytes derived from data.bin (byte i = data[i % 3000] + i // 3000, mod 256)."""
data = open("data.bin", "rb").read()
out = bytes((data[i % len(data)] + i // len(data)) & 0xFF for i in range(300_000))
with open("big.bin", "wb") as f:
    f.write(out)
