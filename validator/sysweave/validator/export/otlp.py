"""UnifiedTrace -> OTLP (opentelemetry-exporter-otlp, gRPC or HTTP/protobuf).

One OTLP trace per UnifiedTrace (its 16-byte id, or the trace id of ``--trace-parent``/``TRACEPARENT``);
each process is a span whose children are its syscall, GPU and compute spans (not one trace per syscall,
as the seed's exporter did). Causal edges become span links. Semantic conventions where they exist
(process.pid, process.command_line, host.name, service.name); ``syscall.*``, ``gpu.*``, ``compute.*``,
``sysweave.*`` otherwise. Timestamps are the events' wall-clock ns exactly as the trace holds them: the
pipeline's clock sync already corrected every host once (``sysweave.streams.pipeline``), so nothing is
shifted here; a corrected host's offset and bound are attached as ``sysweave.clock.*`` attributes only.

Errors::

    ExportError
      └── ExportUnavailable   -- the endpoint did not accept the spans (after the exporter's own retries)
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from typing import Any

from sysweave.schemas.errors import ValidatorError
from sysweave.schemas.events import Event, ProcessSpan, UnifiedTrace
from sysweave.validator.export.kinds import view_of

__all__ = ["ExportError", "ExportUnavailable", "export", "gpu_sample_events", "make_exporter", "parse_traceparent",
           "span_attributes", "to_readable_spans"]


class ExportError(ValidatorError):
    pass


class ExportUnavailable(ExportError):
    pass


_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def parse_traceparent(value: str) -> tuple[int, int]:
    """W3C traceparent -> (trace_id, parent span id). '00-<32 hex>-<16 hex>-01' only; raises ValueError."""
    m = _TRACEPARENT.match(value.strip().lower())
    if not m or int(m.group(1), 16) == 0 or int(m.group(2), 16) == 0:
        raise ValueError(f"invalid traceparent {value!r}: expected 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>")
    return int(m.group(1), 16), int(m.group(2), 16)


def _span_id(*parts: bytes) -> int:
    v = int.from_bytes(hashlib.blake2b(b"/".join(parts), digest_size=8).digest(), "big")
    return v or 1


def _header_attrs(e: Event) -> dict[str, Any]:
    h = e.h
    return {"sysweave.event_id": h.event_id.hex(), "sysweave.lamport": h.stamp.lamport,
            "lamport.clock": h.stamp.lamport,  # the seed's attribute name, kept for its consumers
            # packed HLCs pass int64 in 2038 (48-bit l in 2**-16 s): beyond, a decimal string
            "sysweave.hlc": h.stamp.hlc if h.stamp.hlc < 1 << 63 else str(h.stamp.hlc), "thread.id": h.tid}


def span_attributes(e: Event) -> tuple[str, dict[str, Any]] | None:
    """The OTLP child span of an event, (name, attributes), or None when its kind is not a span
    (``kinds.view_of``: the one place per kind)."""
    span = view_of(e).otlp_span(e)
    if span is None:
        return None
    return span[0], {**_header_attrs(e), **span[1]}


def gpu_sample_events(events: Sequence[Event]) -> list[Any]:
    """The span events of a process span: its NVML readings (``kinds.GpuSampleView``), at their own times."""
    from opentelemetry.sdk.trace import Event as SpanEvent

    out = []
    for e in events:
        ev = view_of(e).otlp_event(e)
        if ev is not None:
            out.append(SpanEvent(ev[0], ev[1], e.h.wall_ns))
    return out


def to_readable_spans(trace: UnifiedTrace, traceparent: str | None = None) -> list[Any]:
    """The OTLP spans of a trace, as opentelemetry-sdk ReadableSpans ready for any span exporter."""
    from opentelemetry.trace import SpanContext, TraceFlags

    trace_id = int.from_bytes(trace.trace_id, "big")
    root_parent: SpanContext | None = None
    if traceparent:
        trace_id, parent_span = parse_traceparent(traceparent)
        root_parent = SpanContext(trace_id, parent_span, is_remote=True, trace_flags=TraceFlags(1))
    flags = TraceFlags(1)
    clocks = {c.host: (c.offset_ns, c.bound_ns) for c in trace.clocks}
    proc_ctx = {key: SpanContext(trace_id, _span_id(trace.trace_id, p.host_id.encode(), str(p.pid).encode()),
                                 is_remote=False, trace_flags=flags)
                for key, p in trace.processes.items()}
    by_event: dict[bytes, SpanContext] = {}
    spans = []
    for key, p in trace.processes.items():
        parent = proc_ctx.get(p.parent) if p.parent else root_parent
        spans.extend(_process_spans(p, proc_ctx[key], parent, clocks.get(p.host_id), by_event))
    return _with_edge_links(spans, trace, by_event)


def _process_spans(p: ProcessSpan, ctx: Any, parent: Any, clock: tuple[int, int] | None,
                   by_event: dict[bytes, Any]) -> list[Any]:
    """A process's span (``ctx``; its host's clock correction ``clock`` = (offset, bound) ns, when corrected)
    followed by its events' child spans, whose contexts are recorded in ``by_event`` (by event id)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, SpanKind

    cmd = " ".join(p.argv)
    res = Resource.create({"service.name": os.path.basename(p.argv[0]) if p.argv else f"pid {p.pid}",
                           "host.name": p.host_id, "process.pid": p.pid, "process.command_line": cmd})
    attrs: dict[str, Any] = {"process.pid": p.pid, "process.command_line": cmd, "host.name": p.host_id}
    if p.exit_code is not None:
        attrs["process.exit.code"] = p.exit_code
    if clock is not None:
        attrs.update({"sysweave.clock.offset_ns": clock[0], "sysweave.clock.bound_ns": clock[1]})
    spans = [ReadableSpan(name=cmd[:120] or f"pid {p.pid}", context=ctx, parent=parent, resource=res,
                          attributes=attrs, kind=SpanKind.INTERNAL, events=gpu_sample_events(p.events),
                          start_time=p.start_wall_ns, end_time=max(p.end_wall_ns, p.start_wall_ns))]
    for e in p.events:
        span = span_attributes(e)
        if span is None:
            continue
        name, a = span
        sctx = SpanContext(ctx.trace_id, _span_id(e.h.event_id), is_remote=False, trace_flags=ctx.trace_flags)
        by_event[e.h.event_id] = sctx
        start = e.h.wall_ns
        spans.append(ReadableSpan(name=name, context=sctx, parent=ctx, resource=res, attributes=a,
                                  kind=SpanKind.INTERNAL, start_time=start, end_time=start + e.h.duration_ns))
    return spans


def _with_edge_links(spans: list[Any], trace: UnifiedTrace, by_event: dict[bytes, Any]) -> list[Any]:
    """Causal edges as links on the destination span (those spans rebuilt with their links)."""
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import Link

    links: dict[bytes, list[Any]] = {}
    for edge in trace.edges:
        if edge.src in by_event and edge.dst in by_event:
            links.setdefault(edge.dst, []).append(Link(by_event[edge.src], {"sysweave.edge.kind": edge.kind.name}))
    if not links:
        return spans
    wanted = {by_event[d].span_id: ls for d, ls in links.items()}
    return [ReadableSpan(name=s.name, context=s.context, parent=s.parent, resource=s.resource, attributes=s.attributes,
                         kind=s.kind, start_time=s.start_time, end_time=s.end_time, links=wanted[s.context.span_id],
                         events=s.events)
            if s.context.span_id in wanted else s for s in spans]


def make_exporter(endpoint: str, protocol: str = "grpc") -> Any:
    """gRPC (host:4317) or HTTP/protobuf (http://host:4318/v1/traces) OTLP span exporter."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10)
    if protocol in ("http", "http/protobuf"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        url = endpoint if endpoint.endswith("/v1/traces") else endpoint.rstrip("/") + "/v1/traces"
        return HttpExporter(endpoint=url, timeout=10)
    raise ValueError(f"unknown OTLP protocol {protocol!r}: use grpc or http/protobuf")


def export(trace: UnifiedTrace, exporter: Any, traceparent: str | None = None, batch: int = 512) -> int:
    """Send a trace's spans; returns how many. Raises ExportUnavailable if the endpoint refuses."""
    from opentelemetry.sdk.trace.export import SpanExportResult

    spans: Sequence[Any] = to_readable_spans(trace, traceparent)
    for i in range(0, len(spans), batch):
        if exporter.export(spans[i:i + batch]) is not SpanExportResult.SUCCESS:
            raise ExportUnavailable(f"the OTLP endpoint did not accept spans {i}..{i + batch}")
    return len(spans)
