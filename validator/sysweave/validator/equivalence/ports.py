"""Which ports the kernel assigned in a run, and their names (pure): only those are normalised when endpoints
are compared.

A port the program chose (a ``bind`` to a fixed port, a destination it sends to or connects to) is part of its
behaviour and is compared as it is, in the ephemeral range or not: a datagram to port 40007 and one to 40008
differ. A port the kernel chose differs from run to run and is named by its role and its rank:

* ``ephemeral-bind#N``: the port of a socket bound to port 0 (``bind(0)``), learnt from a ``getsockname`` on
  it: a server's port, which the peers that send or connect to it then name the same way;
* ``ephemeral-local#N``: any other port the kernel assigned — a ``getsockname`` result of a socket not
  bound explicitly (the implicit bind of ``connect``/``sendto``), the peer port an ``accept`` returns, the
  source port of a datagram received on loopback (unless that port was already a destination the tree chose:
  then it is a server's fixed port answering, or bound explicitly).

``N`` counts each role's ports from 1 in the run's order (the extraction's per-host happens-before order): a
``bind(0)`` port by its ``bind`` (not by when the program asked for the number), any other by where it is first
seen. So the first socket bound to port 0 has ``ephemeral-bind#1`` in both runs, and two runs that use two such
ports in swapped roles (a datagram meant for the first receiver sent to the second) differ.

    >>> from sysweave.schemas.events import EventHeader, SyscallSpan
    >>> def call(i, name, **args): return SyscallSpan(EventHeader(bytes([i]) * 16, "h", 1, 1, i, i), 0, name, 0, args)
    >>> evs = [call(1, "bind", fd=3, addr="127.0.0.1:0"), call(2, "getsockname", fd=3, addr="127.0.0.1:48681"),
    ...        call(3, "sendto", fd=4, dest_addr="127.0.0.1:40007"), call(4, "recvfrom", fd=3, src_addr="127.0.0.1:49486")]
    >>> ports = kernel_ports(evs)
    >>> ports.names
    {48681: 'ephemeral-bind#1', 49486: 'ephemeral-local#1'}
    >>> ports.at_bind[evs[0].h.event_id]
    48681
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from sysweave.schemas.events import Event, SyscallSpan

__all__ = ["KernelPorts", "kernel_ports", "port_of"]

_CALLS = frozenset({"bind", "getsockname", "accept", "accept4", "recvfrom", "recvmsg", "connect", "sendto", "sendmsg"})


def port_of(addr: object) -> tuple[str, int] | None:
    """('127.0.0.1', 80) from '127.0.0.1:80' or '[::1]:80'; None for anything else (unix:, NULL, family=...)."""
    if not isinstance(addr, str) or ":" not in addr or addr.startswith(("unix:", "family=")):
        return None
    host, _, port = addr.rpartition(":")
    return (host.strip("[]"), int(port)) if port.isdigit() else None


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class KernelPorts:
    """``names``: each kernel-assigned port -> its name (see the module docstring). ``at_bind``: a ``bind(0)``
    call's event id -> the port the kernel gave it (so the bound socket is named by it too)."""

    names: dict[int, str] = field(default_factory=dict)
    at_bind: dict[bytes, int] = field(default_factory=dict)

    def __contains__(self, port: object) -> bool:
        return port in self.names


def kernel_ports(events: Iterable[Event]) -> KernelPorts:
    """The ports the kernel assigned to sockets of the traced tree, named by role and rank (module docstring)."""
    bound: set[int] = set()  # ports bound explicitly
    chosen: set[int] = set()  # destinations the tree chose (before they were seen as a source)
    order: dict[int, tuple[str, int]] = {}  # assigned port -> (role, its rank key: where it was bound or first seen)
    zero: dict[tuple[str, int, int], tuple[bytes, int]] = {}  # (host, pid, fd) bound to port 0 -> (bind's event id, i)
    at_bind: dict[bytes, int] = {}
    for i, e in enumerate(events):
        if type(e) is not SyscallSpan or e.name not in _CALLS or e.ret < 0:
            continue
        name, args, fd = e.name, e.args, e.args.get("fd", -1)
        if name == "bind":
            hp = port_of(args.get("addr"))
            if hp and hp[1]:
                bound.add(hp[1])
            elif hp and isinstance(fd, int):
                zero[(e.h.host_id, e.h.pid, fd)] = (e.h.event_id, i)
        elif name in ("connect", "sendto", "sendmsg"):
            hp = port_of(args.get("addr" if name == "connect" else "dest_addr"))
            if hp and hp[1] not in order:
                chosen.add(hp[1])
        elif name in ("getsockname", "accept", "accept4"):
            hp = port_of(args.get("addr"))
            at = zero.pop((e.h.host_id, e.h.pid, fd), None) if name == "getsockname" and isinstance(fd, int) \
                else None
            if hp and hp[1]:
                # a bind(0) port ranks by its bind (the order the program learns ports in is its own business)
                order.setdefault(hp[1], ("bind", at[1]) if at is not None else ("local", i))
                if at is not None:
                    at_bind[at[0]] = hp[1]
        else:  # recvfrom/recvmsg: the sender's port
            hp = port_of(args.get("src_addr"))
            if hp and hp[1] and _loopback(hp[0]) and hp[1] not in chosen:
                order.setdefault(hp[1], ("local", i))
    return KernelPorts(_number(order, bound), {k: v for k, v in at_bind.items() if v not in bound})


def _number(order: dict[int, tuple[str, int]], bound: set[int]) -> dict[int, str]:
    """Each role's ports numbered from 1 by rank key (explicitly bound ports are the program's)."""
    rank: dict[str, int] = {}
    names = {}
    for port, (role, _) in sorted(order.items(), key=lambda kv: kv[1][1]):
        if port not in bound:
            rank[role] = rank.get(role, 0) + 1
            names[port] = f"ephemeral-{role}#{rank[role]}"
    return names
