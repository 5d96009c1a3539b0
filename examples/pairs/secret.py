"""Derive a key from data.bin (CRC-32 in hex) and store it in secret.key, created exclusively with mode 0600."""
import os
import zlib

key = f"{zlib.crc32(open('data.bin', 'rb').read()):08x}\n"
fd = os.open("secret.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, key.encode())
os.close(fd)
print("key written")
