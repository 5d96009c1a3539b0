from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator, Mapping

from sysweave.schemas.events import EdgeKind, SyscallSpan, UnifiedTrace


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 20 s (a Faust worker can take long to leave its consumer group)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def create_topics(bootstrap: str, suffix: str, partitions: int = 4) -> None:
    """Create a test's own topics up front: a consumer subscribed to a topic that does not exist yet only
    sees it after its next metadata refresh (minutes)."""
    from kafka.admin import KafkaAdminClient, NewTopic

    from sysweave.schemas import topics

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(t + suffix, partitions, 1) for t in
                         (topics.TOPIC_EVENTS, topics.TOPIC_TRACES, topics.TOPIC_CONTROL, topics.TOPIC_DEAD_LETTER,
                          topics.TOPIC_VALIDATION,
                          topics.TOPIC_ENDPOINTS, topics.TOPIC_SAMPLING)])
    admin.close()


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def network_testbed(prefix: str, links: Mapping[str, tuple[str, str]]) -> Iterator[dict[str, str]]:
    """Three "hosts" as network namespaces: A joined to each peer in ``links`` (peer -> (A's ip, peer's ip))
    by a veth pair. Yields host -> namespace name; deletes them afterwards (a fixture's body)."""
    tag = uuid.uuid4().hex[:4]
    ns = {h: f"{prefix}{h}{tag}" for h in ("A", *links)}
    try:
        for name in ns.values():
            _sh("ip", "netns", "add", name)
            _sh("ip", "-n", name, "link", "set", "lo", "up")
        for peer, (a_ip, p_ip) in links.items():
            a_if, p_if = f"{prefix}{peer}{tag}", f"{peer.lower()}{prefix}{tag}"
            _sh("ip", "link", "add", a_if, "type", "veth", "peer", "name", p_if)
            _sh("ip", "link", "set", a_if, "netns", ns["A"])
            _sh("ip", "link", "set", p_if, "netns", ns[peer])
            _sh("ip", "-n", ns["A"], "addr", "add", f"{a_ip}/24", "dev", a_if)
            _sh("ip", "-n", ns[peer], "addr", "add", f"{p_ip}/24", "dev", p_if)
            _sh("ip", "-n", ns["A"], "link", "set", a_if, "up")
            _sh("ip", "-n", ns[peer], "link", "set", p_if, "up")
        yield ns
    finally:
        for name in ns.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def assert_cross_host_job(trace: UnifiedTrace, offsets: Mapping[str, int]) -> None:
    """A coordinator on A with workers on B and C: TCP edges both ways on both links, no receive completing
    before its send after clock correction, and each peer's injected offset recovered within its bound."""
    events = {e.h.event_id: e for p in trace.processes.values() for e in p.events}
    tcp = [e for e in trace.edges if e.kind is EdgeKind.TCP]
    cross = {(events[e.src].h.host_id, events[e.dst].h.host_id) for e in tcp if e.src in events and e.dst in events}
    assert {("A", "B"), ("B", "A"), ("A", "C"), ("C", "A")} <= cross, cross
    for e in tcp:
        s, r = events[e.src], events[e.dst]
        assert isinstance(s, SyscallSpan) and isinstance(r, SyscallSpan)
        assert r.h.wall_ns + r.h.duration_ns >= s.h.wall_ns
    est = {c.host: c for c in trace.clocks}
    for host in "BC":
        ce = est[host]
        assert ce.reference == "A"
        assert abs(ce.offset_ns - offsets[host]) <= ce.bound_ns, (host, ce.offset_ns, ce.bound_ns)
        assert ce.bound_ns < 2_000_000  # the bound is informative, not vacuous
