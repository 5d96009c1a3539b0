"""One place per event kind says how it exports (``validator.export.kinds``): both exporters take every kind's
span, span event and Perfetto placement from its view, and a kind with no view exports nothing."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.contract.strategies import any_event, event_strategy

from sysweave.schemas.events import EVENT_TYPES, GpuSample, SyscallSpan
from sysweave.streams.pipeline import build_trace
from sysweave.validator.export.kinds import VIEWS, view_of
from sysweave.validator.export.otlp import span_attributes, to_readable_spans
from sysweave.validator.export.perfetto import to_chrome_trace


def test_every_view_is_of_a_wire_kind_and_each_kind_exports_one_way() -> None:
    assert set(VIEWS) <= set(EVENT_TYPES.values())
    for kind, view in VIEWS.items():  # a span, or a span event (NVML readings), never both
        assert (type(view).otlp_span is not type(VIEWS[GpuSample]).otlp_span) != (kind is GpuSample)


@given(st.lists(any_event, min_size=1, max_size=25))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_exports_follow_the_views(events: list[object]) -> None:
    trace = build_trace(events, b"t" * 16, "").trace  # type: ignore[arg-type]
    in_procs = [e for p in trace.processes.values() for e in p.events]
    spans = to_readable_spans(trace)
    assert len(spans) == len(trace.processes) + sum(1 for e in in_procs if view_of(e).otlp_span(e) is not None)
    assert sum(len(s.events) for s in spans) == sum(1 for e in in_procs if view_of(e).otlp_event(e) is not None)
    chrome = to_chrome_trace(trace)["traceEvents"]
    slices = [c for c in chrome if c["ph"] in ("X", "i")]
    assert len(slices) == sum(1 for e in in_procs if (v := view_of(e).chrome(e)) is not None and v.counters is None)


@given(event_strategy(SyscallSpan))
def test_a_syscall_span_carries_the_header_and_its_arguments(e: SyscallSpan) -> None:
    got = span_attributes(e)
    assert got is not None
    name, attrs = got
    assert name == e.name and attrs["sysweave.event_id"] == e.h.event_id.hex() and attrs["syscall.ret"] == e.ret
    assert all(f"syscall.args.{k}" in attrs for k, v in e.args.items() if isinstance(v, (int, str, bool, tuple)))
