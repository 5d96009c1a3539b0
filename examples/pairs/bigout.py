"""Print a 132,000-byte table on stdout: 12,000 lines "NNNNN SSSS" (i and i*i mod 9973)."""
for i in range(12000):
    print(f"{i:05d} {i * i % 9973:04d}")
