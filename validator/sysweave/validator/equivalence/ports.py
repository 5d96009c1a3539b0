"""Which ports the kernel assigned in a run (pure): only those are normalised when endpoints are compared.

A port the program chose (a ``bind`` to a fixed port, a destination it sends to or connects to) is part of its
behaviour and is compared as it is, in the ephemeral range or not: a datagram to port 40007 and one to 40008
differ. A port the kernel chose differs from run to run and is named by what it is (``ephemeral``):

* a ``getsockname`` result of a socket in the traced tree that was not bound to that port explicitly
  (``bind(0)``, or an implicit bind on ``connect``/``sendto``), which the peers that use it then name;
* the peer port an ``accept`` returns (the connecting socket's local port), unless bound explicitly;
* the source port of a datagram received on loopback, unless that port was already a destination the tree
  chose (then it is a server's fixed port answering) or bound explicitly.

Events are taken in the order given (the extraction's per-host happens-before order).

    >>> from sysweave.schemas.events import EventHeader, SyscallSpan
    >>> def call(i, name, **args): return SyscallSpan(EventHeader(bytes([i]) * 16, "h", 1, 1, i, i), 0, name, 0, args)
    >>> evs = [call(1, "bind", fd=3, addr="127.0.0.1:0"), call(2, "getsockname", fd=3, addr="127.0.0.1:48681"),
    ...        call(3, "sendto", fd=4, dest_addr="127.0.0.1:40007"), call(4, "recvfrom", fd=3, src_addr="127.0.0.1:49486")]
    >>> sorted(kernel_ports(evs))
    [48681, 49486]
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from sysweave.schemas.events import Event, SyscallSpan

__all__ = ["kernel_ports", "port_of"]

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


def kernel_ports(events: Iterable[Event]) -> frozenset[int]:
    """The ports the kernel assigned to sockets of the traced tree (see the module docstring)."""
    bound: set[int] = set()  # ports bound explicitly
    chosen: set[int] = set()  # destinations the tree chose (before they were seen as a source)
    assigned: set[int] = set()
    for e in events:
        if type(e) is not SyscallSpan or e.name not in _CALLS or e.ret < 0:
            continue
        name, args = e.name, e.args
        if name == "bind":
            hp = port_of(args.get("addr"))
            if hp and hp[1]:
                bound.add(hp[1])
        elif name in ("connect", "sendto", "sendmsg"):
            hp = port_of(args.get("addr" if name == "connect" else "dest_addr"))
            if hp and hp[1] not in assigned:
                chosen.add(hp[1])
        elif name in ("getsockname", "accept", "accept4"):
            hp = port_of(args.get("addr"))
            if hp and hp[1]:
                assigned.add(hp[1])
        else:  # recvfrom/recvmsg: the sender's port
            hp = port_of(args.get("src_addr"))
            if hp and hp[1] and _loopback(hp[0]) and hp[1] not in chosen:
                assigned.add(hp[1])
    return frozenset(assigned - bound)
