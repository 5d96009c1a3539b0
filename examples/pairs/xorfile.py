"""XOR every byte of data.bin with 0x5A into data.xor (binary content); print the size."""
data = open("data.bin", "rb").read()
out = bytes(b ^ 0x5A for b in data)
with open("data.xor", "wb") as f:
    f.write(out)
print(f"{len(out)} bytes")
