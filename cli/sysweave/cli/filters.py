"""strace's ``-e trace=EXPR``: names, %classes, /regex, ``!`` negation, ``all``/``none``.

>>> sorted(parse_trace_expr("trace=openat,%network")) [:3]
['accept', 'accept4', 'bind']
"""

from __future__ import annotations

import re

from sysweave.agents.syscall_args import CLASSES, NR_BY_NAME
from sysweave.schemas.errors import CliError

__all__ = ["ALL_NAMES", "FilterError", "parse_trace_expr"]


class FilterError(CliError, ValueError):
    """A bad -e expression; the message names the offending token."""


ALL_NAMES = frozenset(NR_BY_NAME)


def parse_trace_expr(expr: str) -> frozenset[str]:
    """The set of syscall names an expression selects."""
    qualifier, sep, value = expr.partition("=")
    if not sep:
        qualifier, value = "trace", expr
    if qualifier not in ("trace", "t"):
        raise FilterError(f"-e {qualifier}=...: unsupported qualifier '{qualifier}' (sysweave supports trace=)")
    negate = value.startswith("!")
    if negate:
        value = value[1:]
    if not value:
        raise FilterError(f"-e {expr}: empty syscall list")
    chosen: set[str] = set()
    for token in value.split(","):
        token = token.strip()
        if token in ("all", "none"):
            chosen |= ALL_NAMES if token == "all" else set()
        elif token.startswith("%"):
            cls = token[1:]
            if cls not in CLASSES:
                raise FilterError(f"invalid system call class '{token}' (known: {', '.join('%' + c for c in sorted(CLASSES))})")
            chosen |= CLASSES[cls]
        elif token.startswith("/"):
            try:
                rx = re.compile(token[1:])
            except re.error as exc:
                raise FilterError(f"invalid regular expression '{token[1:]}': {exc}") from exc
            matched = {n for n in ALL_NAMES if rx.search(n)}
            if not matched:
                raise FilterError(f"regular expression '{token[1:]}' matches no system call")
            chosen |= matched
        elif token in ALL_NAMES:
            chosen.add(token)
        else:
            raise FilterError(f"invalid system call '{token}'")
    return frozenset(ALL_NAMES - chosen) if negate else frozenset(chosen)
