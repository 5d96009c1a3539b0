"""Ports (issue 17.3): only ports the kernel assigned are normalised; a destination the program chose is compared
as it is, in the ephemeral range or not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sysweave.schemas.events import EventHeader, ProcessEvent, ProcessEventType, SyscallSpan
from sysweave.validator.equivalence.compare import compare
from sysweave.validator.equivalence.observe import extract
from sysweave.validator.equivalence.ports import kernel_ports


def _h(i: int) -> EventHeader:
    return EventHeader(i.to_bytes(16, "big"), "h", 10, 10, i, i)


def _run(calls: list[tuple[str, int, dict[str, object], bytes | None]]) -> list[object]:
    evs: list[object] = [ProcessEvent(_h(1), ProcessEventType.EXEC, filename="/usr/bin/prog", argv=("prog",))]
    for i, (name, ret, args, payload) in enumerate(calls, start=2):
        evs.append(SyscallSpan(_h(i), 0, name, ret, args, payload, len(payload) if payload else 0))
    return evs


def _udp_send(dest: str, server: int | None = None) -> list[object]:
    calls: list[tuple[str, int, dict[str, object], bytes | None]] = []
    if server is not None:  # a receiver on bind(0): the kernel assigns ``server``, the sender uses it
        calls += [("socket", 4, {"domain": 2, "type": 2, "protocol": 0}, None),
                  ("bind", 0, {"fd": 4, "addr": "127.0.0.1:0"}, None),
                  ("getsockname", 0, {"fd": 4, "addr": f"127.0.0.1:{server}"}, None)]
    calls += [("socket", 3, {"domain": 2, "type": 2, "protocol": 0}, None),
              ("sendto", 4, {"fd": 3, "len": 4, "flags": 0, "dest_addr": dest, "addrlen": 16}, b"ping")]
    return _run(calls)


def test_chosen_destination_port_is_compared() -> None:
    a = extract(_udp_send("127.0.0.1:40007"), "/w", 10)
    b = extract(_udp_send("127.0.0.1:40008"), "/w", 10)
    assert "udp to loopback:40007" in a.conversations
    v = compare(a, b)
    assert v.verdict == "divergent", v.explanation
    assert compare(a, extract(_udp_send("127.0.0.1:40007"), "/w", 10)).verdict == "equivalent"


def test_kernel_assigned_port_is_normalised() -> None:
    a = extract(_udp_send("127.0.0.1:45001", server=45001), "/w", 10)
    b = extract(_udp_send("127.0.0.1:51234", server=51234), "/w", 10)
    assert "udp to loopback:ephemeral-bind#1" in a.conversations
    assert compare(a, b).verdict == "equivalent"


@given(st.integers(1, 65535), st.integers(1, 65535))
def test_only_ports_seen_as_assigned_count(chosen: int, assigned: int) -> None:
    evs = _udp_send(f"127.0.0.1:{chosen}") if chosen == assigned else \
        _udp_send(f"127.0.0.1:{chosen}", server=assigned)
    ports = kernel_ports(evs)  # type: ignore[arg-type]
    assert chosen not in ports or chosen == assigned
    assert (assigned in ports) == (chosen != assigned)


def test_explicit_bind_is_not_kernel_assigned() -> None:
    evs = _run([("bind", 0, {"fd": 3, "addr": "127.0.0.1:40010"}, None),
                ("getsockname", 0, {"fd": 3, "addr": "127.0.0.1:40010"}, None),
                ("recvfrom", 2, {"fd": 3, "src_addr": "127.0.0.1:53"}, b"hi")])
    assert kernel_ports(evs).names == {53: "ephemeral-local#1"}  # type: ignore[arg-type]
    evs = _run([("sendto", 2, {"fd": 3, "dest_addr": "127.0.0.1:53"}, b"q"),
                ("recvfrom", 2, {"fd": 3, "src_addr": "127.0.0.1:53"}, b"a")])
    assert kernel_ports(evs).names == {}  # type: ignore[arg-type]  # the server's port answering


def _two_receivers(first: int, second: int, swap: bool) -> list[object]:
    """Two receivers on bind(0) (the kernel gives them ``first`` and ``second``), then "a" sent to the first
    and "b" to the second (``swap``: "a" to the second, "b" to the first: the roles exchanged)."""
    calls: list[tuple[str, int, dict[str, object], bytes | None]] = []
    for fd, port in ((4, first), (5, second)):
        calls += [("socket", fd, {"domain": 2, "type": 2, "protocol": 0}, None),
                  ("bind", 0, {"fd": fd, "addr": "127.0.0.1:0"}, None),
                  ("getsockname", 0, {"fd": fd, "addr": f"127.0.0.1:{port}"}, None)]
    calls.append(("socket", 3, {"domain": 2, "type": 2, "protocol": 0}, None))
    for msg, port in ((b"a", second if swap else first), (b"b", first if swap else second)):
        calls.append(("sendto", 1, {"fd": 3, "dest_addr": f"127.0.0.1:{port}"}, msg))
    calls += [("recvfrom", 1, {"fd": 4, "src_addr": "127.0.0.1:39000"}, b"b" if swap else b"a"),
              ("recvfrom", 1, {"fd": 5, "src_addr": "127.0.0.1:39000"}, b"a" if swap else b"b")]
    return _run(calls)


@given(st.lists(st.integers(32768, 60999), min_size=4, max_size=4, unique=True))
def test_ephemeral_ports_are_named_by_role_and_rank(ports: list[int]) -> None:
    """The first bind(0) port is ephemeral-bind#1 in both runs whatever number the kernel gave it; the bound
    socket and the peers that send to it share the name; swapped roles are not confused."""
    a = extract(_two_receivers(ports[0], ports[1], swap=False), "/w", 10)
    b = extract(_two_receivers(ports[2], ports[3], swap=False), "/w", 10)
    assert {"udp to loopback:ephemeral-bind#1", "udp to loopback:ephemeral-bind#2",
            "udp on loopback:ephemeral-bind#1", "udp on loopback:ephemeral-bind#2"} <= set(a.conversations)
    assert [m for c in a.conversations["udp on loopback:ephemeral-bind#1"] for m in c.messages] == [("received", b"a")]
    assert compare(a, b).verdict == "equivalent"
    v = compare(a, extract(_two_receivers(ports[2], ports[3], swap=True), "/w", 10))
    assert v.verdict == "divergent" and "ephemeral-bind#1" in v.explanation, v.explanation
