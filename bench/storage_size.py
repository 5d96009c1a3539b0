"""Stored bytes per syscall span after merges (issue 12: <= 12 on a server with column codecs), per column, on
the embedded store (chdb, ClickHouse 26: stands for any server >= 20 by capability) and on Debian's 18.16
server, for the version-1 layout (every column stored, no codecs: what stores held before migration 0040)
and the current one (0040: derived columns as ALIAS, codecs where the server has them), side by side.

    python -m bench storage [N_SPANS]        # default 1,000,000; needs the local server (make services-up)

The trace is synthetic but shaped like a real one (``realistic_trace``): two hosts, three processes each with
one to three threads, a syscall mix weighted like a Python service's (read/write/futex/epoll/openat/stat...),
times increasing per host with log-normal gaps and durations, Lamport and HLC stamps as the pipeline assigns
them (program order per thread), small args JSON as the agent decodes it, and payloads for reads/writes/
sends/receives of at most 32 bytes (source text read from anywhere in the local Python sources, log lines
written).
Size = system.parts ``data_compressed_bytes`` of active parts / rows after ``OPTIMIZE TABLE ... FINAL``;
per column from system.columns.
"""

from __future__ import annotations

import glob
import math
import os
import random
import sys
import tempfile
import uuid
from collections.abc import Callable
from typing import Any

from sysweave.schemas import ddl
from sysweave.schemas.clocks import hlc_pack, ns_to_hlc_ticks
from sysweave.schemas.columns import _wire_column
from sysweave.schemas.events import CausalStamp, EventHeader, ProcessSpan, SyscallSpan, UnifiedTrace, make_event_id
from sysweave.schemas.rows import TABLES, trace_rows
from sysweave.schemas.syscall_table_x86_64 import SYSCALL_NAMES_X86_64

NR = {name: nr for nr, name in SYSCALL_NAMES_X86_64.items()}
MIX = [("read", 24), ("write", 14), ("futex", 9), ("epoll_wait", 6), ("openat", 6), ("close", 6), ("newfstatat", 6),
       ("lseek", 4), ("recvfrom", 4), ("sendto", 4), ("mmap", 3), ("munmap", 2), ("ioctl", 2), ("fcntl", 2), ("poll", 2),
       ("getdents64", 1), ("brk", 1), ("rt_sigaction", 1), ("access", 1), ("clock_nanosleep", 1), ("getpid", 1)]
SLOW = {"futex", "epoll_wait", "poll", "clock_nanosleep", "recvfrom"}
T0_WALL = 1_795_000_000_000_000_000  # 2026-11-18


def _corpus() -> tuple[list[str], bytes]:
    """Paths to open and text to read: the Python sources on this machine (~28 MB here), so that 32-byte read
    payloads rarely repeat within a compression block (a small corpus would flatter ZSTD)."""
    files = sorted(glob.glob("/usr/lib/python3*/**/*.py", recursive=True)) or [__file__]
    parts = []
    for f in files:
        with open(f, "rb") as fh:
            parts.append(fh.read())
    return files, b"".join(parts)


def realistic_trace(n: int, seed: int = 1) -> UnifiedTrace:
    rng = random.Random(seed)
    paths, text = _corpus()
    names, weights = zip(*MIX)
    cum = list(weights)
    trace = UnifiedTrace(rng.randbytes(16), closed=True)
    hosts = ["web-1", "db-1"]
    per_host = n // len(hosts)
    for hi, host in enumerate(hosts):
        producer = rng.getrandbits(64)
        mono = 3_600_000_000_000 + hi * 7_777_777
        offset = T0_WALL - 3_600_000_000_000 + hi * 123_456
        threads: list[tuple[ProcessSpan, int]] = []
        for p in range(3):
            pid = 4000 + 1000 * hi + 17 * p
            span = trace.processes[(host, pid)] = ProcessSpan(host, pid, None, ("python3", f"svc{p}.py"),
                                                              mono + offset, 0)
            threads += [(span, pid + t) for t in range(rng.randint(1, 3))]
        lam: dict[int, int] = {}
        hlc: dict[int, int] = {}
        fds: dict[int, int] = {}
        pos = rng.randrange(len(text) - 64)
        for seq in range(per_host):
            span, tid = threads[min(int(rng.expovariate(1.0) * 1.5), len(threads) - 1)]
            mono += max(int(rng.lognormvariate(math.log(2_000), 1.0)), 150)
            name = rng.choices(names, cum_weights=None, weights=cum)[0]
            dur = int(rng.lognormvariate(math.log(60_000 if name in SLOW else 1_200), 1.2))
            fd = fds.setdefault(tid, rng.randint(3, 12))
            ret: int = 0
            args: dict[str, Any] = {}
            payload: bytes | None = None
            plen = 0
            if name in ("read", "write", "recvfrom", "sendto"):
                count = rng.choice((4096, 4096, 8192, 65536, 512, 1))
                ret = count if rng.random() < 0.6 else rng.randint(0, count)
                if name == "recvfrom" and rng.random() < 0.3:
                    ret = -11
                args = {"fd": fd, "count": count} if name in ("read", "write") else {"fd": fd, "len": count, "flags": 0}
                if ret > 0:
                    if name in ("read", "recvfrom"):
                        payload = text[pos:pos + min(ret, 32)]
                        pos = rng.randrange(len(text) - 64)  # the next read: anywhere in the corpus
                    else:
                        line = f"{mono // 1000} INFO svc[{span.pid}] req {seq} ok {dur}us\n".encode()
                        payload = line[:min(ret, 32)]
                    plen = ret
            elif name == "openat":
                path = rng.choice(paths[:40])
                args = {"dirfd": -100, "path": path, "flags": rng.choice((524288, 524288, 0, 577)), "mode": 0}
                ret = rng.randint(3, 30) if rng.random() < 0.85 else -2
                fds[tid] = ret if ret > 0 else fd
            elif name == "close":
                args = {"fd": fd}
            elif name == "futex":
                args = {"uaddr": 0x7F3A_1C00_0000 + 64 * (tid % 7), "op": rng.choice((128, 129, 137)), "val": rng.randint(0, 2)}
                ret = rng.choice((0, 0, 1, -11))
            elif name == "epoll_wait":
                args = {"epfd": 5, "maxevents": 128, "timeout": rng.choice((-1, 1000))}
                ret = rng.randint(0, 3)
            elif name == "newfstatat":
                args = {"dirfd": fd, "path": "", "flags": 4096}
            elif name == "lseek":
                args = {"fd": fd, "offset": rng.choice((0, 4096 * rng.randint(0, 64))), "whence": rng.choice((0, 1))}
                ret = args["offset"]
            elif name == "mmap":
                args = {"addr": 0, "length": 4096 * rng.randint(1, 256), "prot": 3, "flags": 34, "fd": -1, "offset": 0}
                ret = 0x7F3A_0000_0000 + 4096 * rng.randint(0, 1 << 20)
            elif name == "munmap":
                args = {"addr": 0x7F3A_0000_0000 + 4096 * rng.randint(0, 1 << 20), "length": 4096 * rng.randint(1, 256)}
            elif name == "getpid":
                ret = span.pid
            wall = mono + offset
            lam[tid] = lam.get(tid, 0) + (1 if rng.random() < 0.99 else rng.randint(2, 50))
            hlc[tid] = max(hlc_pack(ns_to_hlc_ticks(wall), 0), hlc.get(tid, 0) + 1)
            h = EventHeader(make_event_id(producer, seq + 1), host, span.pid, tid, mono, wall, dur,
                            CausalStamp(lam[tid], hlc[tid]))
            reason = 4 if -4096 < ret < 0 else (2 if dur > 10_000 else 1)
            span.events.append(SyscallSpan(h, NR[name], name, ret, args, payload, plen, reason))
        for span, _ in threads:
            span.end_wall_ns = mono + offset
    return trace


# --- measuring -----------------------------------------------------------------------------------------------

def _v1_columns(trace: UnifiedTrace) -> list[tuple[Any, list[Any]]]:
    """syscall_spans as version 1 stored it: every column of the map, in its order."""
    rows = trace_rows(trace)["syscall_spans"]
    return [(c, _wire_column(c.type, [r[c.name] for r in rows])) for c in TABLES["syscall_spans"]]


def _old_migrations(execute: Callable[[str], Any]) -> None:
    execute(ddl.MIGRATIONS_TABLE)
    for mig in ddl.load_migrations():
        if mig.version < 40:
            execute(mig.sql)


def _sizes(execute: Callable[[str], Any], db: str) -> tuple[int, int, int, dict[str, int]]:
    execute("OPTIMIZE TABLE syscall_spans FINAL")
    rows, comp, uncomp = execute(f"SELECT sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes) "
                                 f"FROM system.parts WHERE database = '{db}' AND table = 'syscall_spans' AND active")[0]
    cols = execute(f"SELECT name, data_compressed_bytes FROM system.columns WHERE database = '{db}' "
                   "AND table = 'syscall_spans'")
    return int(rows), int(comp), int(uncomp), {str(n): int(b) for n, b in cols}


def _chdb_execute(session: Any) -> Callable[[str], list[tuple[Any, ...]]]:
    import json

    def execute(sql: str) -> list[tuple[Any, ...]]:
        res = session.query(sql, "JSONCompact")
        text = res.bytes().decode() if res is not None else ""
        return [tuple(r) for r in json.loads(text)["data"]] if text.strip() else []

    return execute


def measure_embedded(trace: UnifiedTrace, layout: str) -> tuple[int, int, int, dict[str, int]]:
    """chdb as a MergeTree server >= 20 (a database on a directory, the DDL's codecs22 variant); the embedded
    store itself keeps parts, measured by :func:`measure_parts`."""
    from chdb import session as chdb_session

    from sysweave.schemas.columns import trace_columns
    from sysweave.validator.store import native

    with tempfile.TemporaryDirectory() as d:
        s = chdb_session.Session(os.path.join(d, "db"))
        try:
            execute = _chdb_execute(s)
            execute("CREATE DATABASE IF NOT EXISTS bench")
            execute("USE bench")
            cols = _v1_columns(trace) if layout == "v1" else trace_columns(trace)["syscall_spans"]
            if layout == "v1":
                _old_migrations(execute)
            else:
                ddl.migrate(execute)
            block = os.path.join(d, "spans.native")
            with open(block, "wb") as f:
                f.write(native.encode_block(cols))
            execute(f"INSERT INTO syscall_spans ({', '.join(c.name for c, _ in cols)}) SELECT * FROM file('{block}', Native)")
            return _sizes(execute, "bench")
        finally:
            s.close()


def measure_parts(trace: UnifiedTrace) -> tuple[int, int]:
    """The embedded store's syscall_spans bytes per span: as a command writes it (Native) and merged (Parquet)."""
    from sysweave.validator.store.compact import compact
    from sysweave.validator.store.embedded import EmbeddedStore

    with tempfile.TemporaryDirectory() as d:
        store = EmbeddedStore(os.path.join(d, "s"))
        store.store_trace(trace)
        written = sum(os.path.getsize(f) for f in glob.glob(os.path.join(d, "s", "parts", "*", "syscall_spans.*")))
        compact(store.layout, full=True)
        merged = sum(os.path.getsize(f) for f in glob.glob(os.path.join(d, "s", "parts", "*", "syscall_spans.*")))
        store.close()
    return written, merged


def measure_server(trace: UnifiedTrace, layout: str,
                   url: str = "clickhouse://127.0.0.1:9000") -> tuple[int, int, int, dict[str, int]]:
    from sysweave.validator.store.server import ServerStore

    db = f"bench_size_{uuid.uuid4().hex[:6]}"
    store = ServerStore(f"{url}/{db}")
    store._admin.execute(f"CREATE DATABASE {db}")
    try:
        if layout == "v1":
            _old_migrations(store.execute)
            store._write_columns("syscall_spans", _v1_columns(trace))
        else:
            store.migrate()
            store.store_trace(trace)
        return _sizes(store.execute, db)
    finally:
        store._admin.execute(f"DROP DATABASE IF EXISTS {db}")
        store.close()


def main(n: int = 1_000_000) -> dict[str, float]:
    trace = realistic_trace(n)
    results: dict[str, tuple[int, int, int, dict[str, int]]] = {}
    for store in ("chdb", "18.16"):
        for layout in ("v1", "v2"):
            fn = measure_embedded if store == "chdb" else measure_server
            results[f"{store} {layout}"] = fn(trace, layout)
    keys = list(results)
    written, merged = measure_parts(trace)
    print(f"embedded store (parts): {written / n:.1f} bytes per span as written (Native), {merged / n:.2f} merged "
          "(Parquet, ZSTD)")
    print(f"stored bytes per syscall span after OPTIMIZE FINAL ({n:,} realistic spans; v1 = every column, no codecs; "
          "v2 = migration 0040)")
    print("| | " + " | ".join(keys) + " |\n|---|" + "---:|" * len(keys))
    print("| **total (system.parts)** | " + " | ".join(f"**{r[1] / r[0]:.2f}**" for r in results.values()) + " |")
    print("| uncompressed | " + " | ".join(f"{r[2] / r[0]:.1f}" for r in results.values()) + " |")
    names: list[str] = []
    for r in results.values():
        names += [c for c in r[3] if c not in names]
    for c in sorted(names, key=lambda c: -max(r[3].get(c, 0) / r[0] for r in results.values())):
        cells = [f"{r[3][c] / r[0]:.3f}" if c in r[3] and r[3][c] else ("alias" if c in r[3] else "—")
                 for r in results.values()]
        print(f"| {c} | " + " | ".join(cells) + " |")
    return {k: r[1] / r[0] for k, r in results.items()}


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
