"""The exact statistics of syscalls.bpf.c, read out of its maps (SyscallProbe.aggregates and .lost): per
(process, syscall) aggregates summed over CPUs, and the per-CPU loss counters. Layouts come from syscalls.h
(contract.py), never copied here."""

from __future__ import annotations

import struct

from sysweave.agents.bpf.contract import contract
from sysweave.agents.bpf.objects import BpfMap

__all__ = ["HIST_BUCKETS", "Aggregate", "read_aggregates", "read_lost"]

_C = contract()
_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")
_AGG_KEY = _C.fixed_prefix("agg_key")[0]
_AGG_VAL, _AGG_NAMES = _C.fixed_prefix("agg_val")
_AGG_SIZE = _C.layout("agg_val")[1]
_AGG_GROUP = _C["AGG_GROUP"]  # aggregate slots per `aggs` value
HIST_BUCKETS = _C["HIST_BUCKETS"]  # log2 latency buckets per aggregate

Aggregate = tuple[int, int, int, int, int, list[int]]  # (tgid, nr, calls, errors, total_ns, hist_log2)


def read_aggregates(slots: BpfMap, aggs: BpfMap) -> list[Aggregate]:
    """(tgid, nr, calls, errors, total_ns, hist_log2) per (process, syscall) with calls, summed over CPUs.
    ``slots``: the `agg_slots` map ((tgid, nr) -> slot); ``aggs``: the per-CPU `aggs` map (AGG_GROUP slots a value)."""
    calls_i, errors_i, total_i = _AGG_NAMES.index("calls"), _AGG_NAMES.index("errors"), _AGG_NAMES.index("total_ns")
    hist_i = _AGG_NAMES.index("hist0")
    out, groups = [], {}  # group -> its per-CPU values, read once
    for key in list(slots.keys()):
        raw = slots.lookup(key)
        if raw is None:
            continue
        group, at = divmod(_U32.unpack_from(raw)[0], _AGG_GROUP)
        if group not in groups:
            value = aggs.lookup(_U32.pack(group))
            groups[group] = aggs.per_cpu(value) if value is not None else []
        at *= _AGG_SIZE
        rows = [_AGG_VAL.unpack_from(v, at) for v in groups[group]]
        if not rows:
            continue
        calls = sum(r[calls_i] for r in rows)
        if not calls:
            continue
        hist = [sum(r[hist_i + i] for r in rows) for i in range(HIST_BUCKETS)]
        tgid, nr = _AGG_KEY.unpack(key)
        out.append((tgid, nr, calls, sum(r[errors_i] for r in rows), sum(r[total_i] for r in rows), hist))
    return out


def read_lost(table: BpfMap, slot: int) -> int:
    """The per-CPU `lost` map's counter at ``slot`` (LOST_*), summed over CPUs."""
    value = table.lookup(_U32.pack(slot))
    return sum(_U64.unpack(v)[0] for v in table.per_cpu(value)) if value else 0
