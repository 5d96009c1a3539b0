"""Store targets as text: a ClickHouse server URL or an embedded store's path.

    is_server_url("clickhouse://127.0.0.1:9000/sysweave") -> True;  is_server_url("/var/lib/traces") -> False
    parse_url("clickhouse://127.0.0.1:9000/sysweave") -> ("127.0.0.1", 9000, "sysweave")
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

__all__ = ["is_server_url", "parse_url"]


def is_server_url(target: str | Path | None) -> bool:
    return isinstance(target, str) and target.startswith(("clickhouse://", "tcp://"))


def parse_url(url: str) -> tuple[str, int, str]:
    """clickhouse://host:9000/db -> (host, port, database). Raises ValueError saying what is wrong."""
    u = urlparse(url if "://" in url else f"clickhouse://{url}")
    if u.scheme not in ("clickhouse", "tcp"):
        raise ValueError(f"ClickHouse URL {url!r}: use clickhouse://HOST:PORT/DATABASE (native protocol)")
    db = (u.path or "/").strip("/") or "sysweave"
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", db):
        raise ValueError(f"ClickHouse URL {url!r}: the database name must be letters, digits and '_'")
    return u.hostname or "127.0.0.1", u.port or 9000, db
