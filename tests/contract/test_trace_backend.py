"""A stored trace's backend is what its hosts' captures said, never a constant."""

from __future__ import annotations

from sysweave.schemas.events import EventHeader, HostInfo, UnifiedTrace
from sysweave.schemas.rows import trace_backend, trace_rows


def _host(name: str, backend: str) -> HostInfo:
    return HostInfo(EventHeader(name.encode().ljust(16, b"\0"), name, 1, 1, 0, 0), name, backend=backend)


def test_backend_comes_from_the_hosts() -> None:
    tr = UnifiedTrace(b"\1" * 16, hosts=[_host("a", "ebpf"), _host("b", "ptrace"), _host("peer", "")])
    assert trace_backend(tr) == "ebpf,ptrace"
    assert trace_rows(tr)["traces"][0]["backend"] == "ebpf,ptrace"
    assert trace_rows(tr, backend="ebpf")["traces"][0]["backend"] == "ebpf"  # a caller that knows says so
    assert trace_backend(UnifiedTrace(b"\2" * 16)) == ""  # nobody said: empty, not a guess
