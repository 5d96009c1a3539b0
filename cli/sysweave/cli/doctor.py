"""``sysweave doctor``: is this host ready for capture, and if not, what to run.

    sysweave doctor [--json] [--fix]

One row per precondition (preconditions.py): ok, or what is wrong and the command that fixes it.  Exit 0
when eBPF capture can start (optional rows may still say what would make it faster or wider), 1 when it
cannot.  ``--fix`` first establishes what sysweave itself can (as root: mount bpffs and tracefs, create
/run/sysweave), the same as capture start-up does; without it the command changes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys

from sysweave.agents.preconditions import Check, capture_ready, check_all, establish

__all__ = ["add_arguments", "render", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON document: {capture_ready, checks: [...]}")
    p.add_argument("--fix", action="store_true",
                   help="establish what sysweave can itself (root: mount bpffs/tracefs, create /run/sysweave) first")


def render(checks: list[Check]) -> str:
    """The table: status, name, detail; a failing row is followed by the command that fixes it."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        status = "ok" if c.ok else ("MISSING" if c.capture_needs else "warn")
        lines.append(f"  {status:<8}{c.name:<{width + 2}}{c.detail}")
        if not c.ok and c.fix:
            lines.append(f"  {'':<8}{'':<{width + 2}}fix: {c.fix}")
    ready = capture_ready(checks)
    slower = [c.name for c in checks if not c.ok and not c.capture_needs]
    if not ready:
        verdict = "eBPF capture cannot start here (rows marked MISSING); 'sysweave trace' would fall back to ptrace"
    elif slower:
        verdict = f"eBPF capture can start; see {', '.join(slower)}"
    else:
        verdict = "eBPF capture is ready"
    return "sysweave doctor: host preconditions\n" + "\n".join(lines) + f"\n{verdict}"


def run(args: argparse.Namespace) -> int:
    if args.fix:
        establish()
    checks = check_all()
    ready = capture_ready(checks)
    if args.json:
        print(json.dumps({"capture_ready": ready, "checks": [c.as_json() for c in checks]}, indent=2))
    else:
        print(render(checks), file=sys.stdout)
    return 0 if ready else 1
