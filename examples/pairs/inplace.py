"""Upper-case names.txt in place the safe way: write names.txt.new, then os.replace it over names.txt."""
import os

text = open("names.txt").read()
with open("names.txt.new", "w") as f:
    f.write(text.upper())
os.replace("names.txt.new", "names.txt")
