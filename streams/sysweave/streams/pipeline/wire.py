"""A finished trace straight to its wire form (pure): the stream worker's emission without rebuilding events.

``build_trace(..., defer_stamps=True)`` leaves the causal stamps it computed in ``FinishedTrace.pending``
(event id -> stamp) instead of rewriting one frozen event per event; :func:`encode_finished` writes each
event's positional array with its pending stamp (``codec.event_to_wire_stamped``). The bytes are exactly
those of ``codec.encode_batch`` over the applied trace's ``trace_events`` (tests/pipeline/test_fast_path.py):

    [schema_version, trace id's first 8 bytes as u64, late events, created_wall_ns, [event, ...]]

in ``trace_events`` order: every process's events, then edges, hosts, lost records, clock estimates.
"""

from __future__ import annotations

import time

import msgpack

from sysweave.schemas import codec
from sysweave.streams.pipeline import FinishedTrace
from sysweave.streams.pipeline.assembly import trace_events

__all__ = ["encode_finished"]


def encode_finished(done: FinishedTrace, created_wall_ns: int | None = None) -> bytes:
    """``done``'s trace as one codec batch (envelope producer id = the trace id's first 8 bytes, sequence = its
    late events, created = ``created_wall_ns`` or now), pending stamps included, nothing rebuilt."""
    trace = done.trace
    wire = codec.events_to_wire(trace_events(trace), done.pending)
    created = time.time_ns() if created_wall_ns is None else created_wall_ns
    return msgpack.packb(
        [codec.SCHEMA_VERSION, int.from_bytes(trace.trace_id[:8], "big"), trace.late_events, created, wire],
        use_bin_type=True)
