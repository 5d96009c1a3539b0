"""The endpoint table (pure): which TCP connections each traced tree made or accepted, as every stream worker sees
them on ``TOPIC_ENDPOINTS`` (:class:`~sysweave.schemas.topics.Sighting`), and which two sightings are the two ends
of one connection. The cross-host join (``join.py``) decides from it which trace a tree or window belongs to.

* a ``client`` sighting — a ``connect(server ip:port)`` — names the trace the connection belongs to (the
  client tree's key, or the key its tree was joined into: :meth:`EndpointTable.resolve_key` follows aliases);
* a ``server`` sighting — an ``accept`` that returned the peer ``client ip:port`` on a listening ``port``
  (from the socket's ``bind``) — is matched to the one client sighting of the same connection
  (:func:`same_connection`: port, the server's address among the server host's, the peer ip among the client
  host's, the client port when the client revealed it, first bytes, and the nearest connect time).

Sightings come from batches as they arrive (:class:`SightingScanner`), before their trees close, so the two
halves of a job can wait for each other.

Why the table is indexed by the server port, not the 4-tuple: the client's ephemeral port is known only when
the client itself calls ``getsockname``/``bind`` (the kernel program does not read ``struct sock``), so the
port both ends always know is the server's; the rest of the tuple is matched per candidate.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sysweave.schemas.events import Event, HostInfo, SyscallSpan
from sysweave.schemas.topics import Sighting

__all__ = ["MATCH_WINDOW_NS", "SCANNED_CALLS", "EndpointTable", "SightingScanner", "same_connection", "split_addr"]

SCANNED_CALLS = frozenset({"connect", "accept", "accept4", "bind"})  # what SightingScanner.scan looks at, besides HostInfo
MATCH_WINDOW_NS = 60_000_000_000  # a connect and its accept are at most this far apart (clock offsets included)


def split_addr(addr: str) -> tuple[str, int]:
    """ "10.0.0.1:80" -> ("10.0.0.1", 80); "[::1]:80" -> ("::1", 80); anything else -> (text, 0)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        return addr, 0
    host = host.strip("[]")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        pass
    return host, int(port)


def _loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _unspecified(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_unspecified
    except ValueError:
        return not ip


def same_connection(client: Sighting, server: Sighting, addresses: Callable[[str], tuple[str, ...]]) -> bool:
    """Whether a client and a server sighting can be the two ends of one TCP connection. ``addresses(host)``:
    a host's IP addresses (empty when unknown, which then constrains nothing)."""
    if client.server_port != server.server_port and server.server_port and client.server_port:
        return False
    if client.client_port and server.client_port and client.client_port != server.client_port:
        return False
    if _loopback(client.server_ip) or _loopback(server.client_ip):
        if client.host != server.host:
            return False
    else:
        srv_addrs = addresses(server.host)
        if srv_addrs and client.server_ip not in srv_addrs:
            return False
        if server.server_ip and not _unspecified(server.server_ip) and server.server_ip != client.server_ip:
            return False
        cli_addrs = addresses(client.host)
        if cli_addrs and server.client_ip not in cli_addrs:
            return False
    a, b = client.first, server.first
    if a and b and not (a.startswith(b) or b.startswith(a)):
        return False
    return abs(client.wall_ns - server.wall_ns) <= MATCH_WINDOW_NS


def _same(a: Sighting | None, b: Sighting) -> bool:
    return a is not None and (a.host, a.event_id) == (b.host, b.event_id)


@dataclass
class EndpointTable:
    """Every worker's copy of the sightings (and host addresses) published on TOPIC_ENDPOINTS.

    ``add`` keeps the newest sighting per (role, event id) — a window joined elsewhere republishes its client
    sightings under the new trace key; ``alias`` records that a whole tree joined another trace."""

    horizon_ns: int = 600_000_000_000  # sightings older than this (by wall time) are forgotten
    by_port: dict[int, dict[tuple[str, bytes], Sighting]] = field(default_factory=lambda: defaultdict(dict))
    hosts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    aliases: dict[bytes, bytes] = field(default_factory=dict)

    def add(self, s: Sighting) -> None:
        if s.role == "alias":
            if s.trace_key != s.target_key:
                self.aliases[s.trace_key] = s.target_key
            return
        if s.role == "host":
            if s.addresses:
                self.hosts[s.host] = s.addresses
            return
        self.by_port[s.server_port][(s.role, s.event_id)] = s

    def addresses(self, host: str) -> tuple[str, ...]:
        return self.hosts.get(host, ())

    def resolve_key(self, key: bytes) -> bytes:
        seen = {key}
        while key in self.aliases:
            key = self.aliases[key]
            if key in seen:
                break
            seen.add(key)
        return key

    def _candidates(self, port: int, role: str) -> Iterable[Sighting]:
        if port:
            return [s for (r, _), s in self.by_port.get(port, {}).items() if r == role]
        return [s for d in self.by_port.values() for (r, _), s in d.items() if r == role]

    def client_of(self, server: Sighting, exclude: set[bytes] | frozenset[bytes] = frozenset()) -> Sighting | None:
        """The client sighting of ``server``'s connection: among those that fit (and are not in ``exclude``),
        the connect nearest in time to the accept's return."""
        fits = [c for c in self._candidates(server.server_port, "client")
                if c.event_id not in exclude and same_connection(c, server, self.addresses)]
        return min(fits, key=lambda c: (abs(c.wall_ns - server.wall_ns), c.event_id), default=None)

    def server_of(self, client: Sighting) -> Sighting | None:
        """The server sighting whose client is ``client`` (nearest first: usually the first candidate)."""
        fits = sorted((s for s in self._candidates(client.server_port, "server")
                       if same_connection(client, s, self.addresses)),
                      key=lambda s: (abs(s.wall_ns - client.wall_ns), s.event_id))
        return next((s for s in fits if _same(self.client_of(s), client)), None)

    def prune(self, now_wall_ns: int) -> None:
        for port in list(self.by_port):
            d = self.by_port[port]
            for k in [k for k, s in d.items() if now_wall_ns - s.wall_ns > self.horizon_ns]:
                del d[k]
            if not d:
                del self.by_port[port]


@dataclass
class SightingScanner:
    """Sightings as batches arrive (before their trees close, so peers can wait for each other): connects and
    accepts of each tree, with the listening port from the tree's earlier ``bind``; hosts' addresses from HostInfo."""

    bound: dict[tuple[str, int, int], int] = field(default_factory=dict)  # (host, pid, fd) -> bound port

    def scan(self, key: bytes, events: Iterable[Event]) -> list[Sighting]:
        evs = events if isinstance(events, (list, tuple)) else list(events)
        if not any(type(e) is HostInfo or (type(e) is SyscallSpan and e.name in SCANNED_CALLS) for e in evs):
            return []  # most batches: one pass over the names, nothing sorted
        out = []
        for e in sorted(evs, key=lambda x: (x.h.mono_ns, x.h.event_id)):
            if isinstance(e, HostInfo):
                out.append(Sighting("host", e.h.host_id, b"", e.h.event_id, 0, addresses=tuple(e.addresses)))
                continue
            if not isinstance(e, SyscallSpan) or (e.ret < 0 and e.ret != -115):
                continue
            fd = e.args.get("fd", -1)
            if e.name == "bind" and isinstance(fd, int):
                self.bound[(e.h.host_id, e.h.pid, fd)] = split_addr(str(e.args.get("addr", "")))[1]
            elif e.name == "connect":
                ip, port = split_addr(str(e.args.get("addr", "")))
                if port:
                    out.append(Sighting("client", e.h.host_id, key, e.h.event_id, port, server_ip=ip,
                                        wall_ns=e.h.wall_ns))
            elif e.name in ("accept", "accept4") and isinstance(fd, int):
                ip, port = split_addr(str(e.args.get("addr", "")))
                out.append(Sighting("server", e.h.host_id, key, e.h.event_id,
                                    self.bound.get((e.h.host_id, e.h.pid, fd), 0), client_ip=ip, client_port=port,
                                    wall_ns=e.h.wall_ns + e.h.duration_ns))
        return out
