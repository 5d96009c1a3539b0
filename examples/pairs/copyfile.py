"""Copy data.bin twice: backup/data.bin with shutil.copyfile (sendfile(2) on Linux) and data.copy with one
read and one write; say so."""
import os
import shutil

os.mkdir("backup")
shutil.copyfile("data.bin", "backup/data.bin")
with open("data.bin", "rb") as src, open("data.copy", "wb") as dst:
    dst.write(src.read())
print("copied 2 files")
