"""Validate config.ini: print the accepted settings on stdout, a warning per unknown key and an error per bad
value on stderr; exit 3 when there was an error."""
import sys

KNOWN = {"host", "port", "timeout", "retries"}
errors = 0
for no, line in enumerate(open("config.ini"), 1):
    line = line.strip()
    if not line or line.startswith(("#", "[")):
        continue
    key, _, value = (part.strip() for part in line.partition("="))
    if key not in KNOWN:
        print(f"config.ini:{no}: warning: unknown key '{key}'", file=sys.stderr)
    elif key != "host" and not value.isdigit():
        print(f"config.ini:{no}: error: {key} must be an integer, got '{value}'", file=sys.stderr)
        errors += 1
    else:
        print(f"{key}={value}")
sys.exit(3 if errors else 0)
