"""Cross-host trace joining (pure: no faust, no kafka): per-host process trees that talk over TCP become one trace.

Agents key every process tree by ``host/rootpid`` (``schemas.topics``), so without a shared label each host's
tree reaches the workers as its own trace. The stream workers join them through an **endpoint table** of the
TCP connections each tree made or accepted (``endpoints.py``: sightings published on ``TOPIC_ENDPOINTS`` and read
by every worker, and which two of them are one connection's ends).

**What the join is bounded by**: the *connection's own window*, never the whole server. A server tree is split
(:func:`split_tree`) into one :class:`Window` per accepted connection — the accepting thread's events from the
``accept`` to the ``close`` of that connection in that process (or to its next accept), plus every process it
forked and every thread it created inside that window (fork- or thread-per-connection servers) — and each
window whose client is known goes to the client's trace. Only a tree **all** of whose accepted connections
came from one trace (a job's worker process, a middle tier serving one caller) joins that trace whole, with
its start-up and exit. So a long-lived server talking to many unrelated clients lends each client trace just
the work that client caused, and keeps the rest as its own trace. Not covered: a thread *pool* handing a
connection to a thread that existed before the accept (that work stays with the server), and a client whose
connect happened before tracing began.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from sysweave.schemas.events import Event, EventHeader, HostInfo, ProcessEvent, ProcessEventType, SyscallSpan
from sysweave.schemas.topics import Sighting
from sysweave.streams.endpoints import EndpointTable, SightingScanner, split_addr
from sysweave.streams.pipeline.fdresources import Op, Resource, ResourceKind
from sysweave.streams.pipeline.fdtrack import FdTracker

__all__ = [
    "Plan",
    "Window",
    "host_infos",
    "join_trees",
    "plan_tree",
    "ripe_windows",
    "split_tree",
    "tree_connections",
]

FIRST_BYTES = 16  # of each connection's data, carried in its sightings to tell apart connections otherwise alike


@dataclass(frozen=True, slots=True)
class Window:
    """One accepted connection's share of a server tree: its server sighting and the ids of its events."""

    sighting: Sighting
    event_ids: frozenset[bytes]
    complete: bool = False  # its close was seen and every process it forked has exited


def _first(chunks: list[SyscallSpan]) -> bytes:
    out = b""
    for e in chunks:
        out += e.payload or b""
        if len(out) >= FIRST_BYTES:
            break
    return out[:FIRST_BYTES]


_CONN = frozenset({ResourceKind.CONN})
_CONNECTING = frozenset({"connect", "accept", "accept4"})  # the only calls that make a connection (fdtrack)
_ADDRESSING = frozenset({"bind", "getsockname", "accept", "accept4"})  # calls whose fd's address a sighting needs


def tree_connections(key: bytes, events: Iterable[Event]) -> tuple[list[Sighting], list[Window]]:
    """A tree's client sightings (with their first bytes sent) and one :class:`Window` per accepted connection
    (with the first bytes received), from the one fd tracker. A tree that never connected nor accepted (most of
    them) has neither: answered by one pass over its calls' names, without tracking its fds."""
    evs = events if isinstance(events, list) else list(events)
    if not any(type(e) is SyscallSpan and e.name in _CONNECTING for e in evs):
        return [], []
    evs = sorted(evs, key=lambda x: (x.h.host_id, x.h.mono_ns, x.h.event_id))
    seen = _scan_connections(evs)
    out_c = []
    for cid, (ev, ip, port) in seen.clients.items():
        lip, lport = seen.local.get(cid, ("", 0))
        out_c.append(Sighting("client", ev.h.host_id, key, ev.h.event_id, port, server_ip=ip, client_ip=lip,
                              client_port=lport, wall_ns=ev.h.wall_ns, first=_first(seen.sent[cid])))
    windows = []
    for cid, (ev, (pip, pport), (lip, lport)) in seen.servers.items():
        s = Sighting("server", ev.h.host_id, key, ev.h.event_id, lport, server_ip=lip, client_ip=pip,
                     client_port=pport, wall_ns=ev.h.wall_ns + ev.h.duration_ns, first=_first(seen.got[cid]))
        ids, complete = _window_ids(evs, ev, seen.ends.get(cid))
        windows.append(Window(s, ids, complete))
    return out_c, windows


_Addr = tuple[str, int]  # (ip, port) as ``endpoints.split_addr`` reads it


@dataclass
class _Connections:
    """What one pass over a tree's calls found, by fdtrack resource id: sockets' bound addresses, client
    connections (their connect, server ip and port, own address when revealed), server connections (their
    accept, peer and local address), each connection's data-carrying sends and receives, and the time (mono ns)
    of each server connection's close in the accepting process."""

    bound: dict[int, _Addr] = field(default_factory=dict)  # socket id
    local: dict[int, _Addr] = field(default_factory=dict)  # client conn id
    clients: dict[int, tuple[SyscallSpan, str, int]] = field(default_factory=dict)
    servers: dict[int, tuple[SyscallSpan, _Addr, _Addr]] = field(default_factory=dict)
    sent: defaultdict[int, list[SyscallSpan]] = field(default_factory=lambda: defaultdict(list))
    got: defaultdict[int, list[SyscallSpan]] = field(default_factory=lambda: defaultdict(list))
    ends: dict[int, int] = field(default_factory=dict)


def _scan_connections(evs: list[Event]) -> _Connections:
    """Every event, in program order, through one fd tracker; what it says of the tree's connections."""
    tr = FdTracker()
    seen = _Connections()
    bound, local, clients, servers, ends = seen.bound, seen.local, seen.clients, seen.servers, seen.ends
    for e in evs:
        if tr.idle_io(e, _CONN):  # a read/write not through a connection: nothing below looks at it
            continue
        listening = None
        if isinstance(e, SyscallSpan) and e.name in _ADDRESSING and e.ret >= 0:
            listening = _note_address(tr, e, seen)  # before feed: what the fd referred to until this call
        acc = tr.feed(e)
        if acc is None or acc.resource is None:
            continue
        res = acc.resource
        if acc.op is Op.CONNECT and res.kind is ResourceKind.CONN:
            ip, port = split_addr(res.remote)
            if port:
                clients[res.id] = (acc.event, ip, port)
                sock = tr.resource(e.h.host_id, e.h.pid, acc.fd)
                if sock is not None and sock.id in bound:  # bound before connect: the client port is known
                    local[res.id] = bound[sock.id]
        elif acc.op is Op.ACCEPT:
            own = bound.get(listening.id, ("", 0)) if listening is not None else ("", 0)
            servers[res.id] = (acc.event, split_addr(res.remote), own)
        elif acc.op is Op.WRITE and res.kind is ResourceKind.CONN and acc.nbytes > 0:
            seen.sent[res.id].append(acc.event)
        elif acc.op is Op.READ and res.kind is ResourceKind.CONN and acc.nbytes > 0:
            seen.got[res.id].append(acc.event)
        elif (acc.op is Op.CLOSE and res.kind is ResourceKind.CONN and res.id in servers and res.id not in ends
              and servers[res.id][0].h.pid == e.h.pid):
            ends[res.id] = e.h.mono_ns
    return seen


def _note_address(tr: FdTracker, e: SyscallSpan, seen: _Connections) -> Resource | None:
    """A successful bind or getsockname: the address of the socket (or client connection) its fd names goes into
    ``seen``. An accept: the listening socket its fd names (None when unknown), whose bound address is the
    accepted connection's local one."""
    res = tr.resource(e.h.host_id, e.h.pid, e.int_arg("fd"))
    if e.name in ("accept", "accept4"):
        return res
    if e.ret == 0:
        addr = split_addr(str(e.args.get("addr", "")))
        if res is not None and res.kind is ResourceKind.SOCKET:
            seen.bound[res.id] = addr
        elif res is not None and res.kind is ResourceKind.CONN and res.role == "client":
            seen.local[res.id] = addr
    return None


def _window_ids(evs: list[Event], accept: SyscallSpan, end: int | None) -> tuple[frozenset[bytes], bool]:
    """The accepting thread from the accept to the close (or its next accept), plus processes forked and threads
    created inside that window (and their descendants); and whether it is complete (closed, its processes gone)."""
    host, pid, tid, start = accept.h.host_id, accept.h.pid, accept.h.tid, accept.h.mono_ns
    closed = end is not None
    if end is None:
        nxt = [e.h.mono_ns for e in evs if e.h.host_id == host and e.h.pid == pid and e.h.tid == tid
               and isinstance(e, SyscallSpan) and e.name in ("accept", "accept4") and e.h.mono_ns > start]
        end = min(nxt) - 1 if nxt else None
    ids: set[bytes] = set()
    procs: set[int] = set()
    threads: set[int] = set()
    exited: set[int] = set()
    for e in evs:
        if e.h.host_id != host:
            continue
        inside = e.h.pid == pid and e.h.tid == tid and start <= e.h.mono_ns and (end is None or e.h.mono_ns <= end)
        if inside:
            ids.add(e.h.event_id)
            if isinstance(e, ProcessEvent) and e.child_pid:
                (procs if e.type is ProcessEventType.FORK else threads).add(e.child_pid)
        elif e.h.pid in procs or (e.h.pid == pid and e.h.tid in threads):
            ids.add(e.h.event_id)
            if isinstance(e, ProcessEvent) and e.type is ProcessEventType.FORK and e.child_pid:
                procs.add(e.child_pid)
            if isinstance(e, ProcessEvent) and e.type is ProcessEventType.EXIT and e.h.pid in procs:
                exited.add(e.h.pid)
    return frozenset(ids), closed and procs <= exited


def split_tree(key: bytes, events: Iterable[Event], target: Callable[[Window], bytes | None],
               whole: bool = True, windows: list[Window] | None = None) -> dict[bytes, list[Event]]:
    """Which trace each of a tree's events belongs to. ``target(window)``: the trace key of the window's client
    (None: unknown). A tree all of whose windows go to one other trace joins it whole (unless ``whole`` is
    False: it already lent windows to other traces); otherwise each window goes to its client's trace and the
    rest stays under ``key``. ``windows``: the tree's, when the caller has them (:func:`tree_connections`)."""
    evs = list(events)
    if windows is None:
        _, windows = tree_connections(key, evs)
    if not windows:
        return {key: evs} if evs else {}
    keys = [target(w) for w in windows]
    joined = {k for k in keys if k is not None and k != key}
    if whole and windows and len(joined) == 1 and all(k is not None for k in keys):
        return {next(iter(joined)): evs}
    owner: dict[bytes, bytes] = {}
    for w, k in zip(windows, keys):
        if k is not None and k != key:
            for i in w.event_ids:
                owner.setdefault(i, k)
    out: dict[bytes, list[Event]] = defaultdict(list)
    for e in evs:
        out[owner.get(e.h.event_id, key)].append(e)
    return dict(out)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with a closed tree: ``wait`` (for a peer's half still expected), or emit ``parts[key]`` (the
    part under the tree's own key is built as a trace; the others are forwarded to their trace's key), after
    publishing ``publish`` (republished client sightings of forwarded parts, and aliases)."""

    wait: bool
    parts: dict[bytes, list[Event]]
    publish: tuple[Sighting, ...] = ()


def plan_tree(key: bytes, events: Iterable[Event], table: EndpointTable, waited_s: float, wait_s: float,
              whole: bool = True) -> Plan:
    """The join decision for a tree that has closed (its own key ``key``), ``waited_s`` after it first closed.

    Waits (up to ``wait_s``) while one of its client connections has a known server end whose window has not
    arrived yet, or one of its accepted connections has no client sighting yet. Then splits (:func:`split_tree`)."""
    evs = list(events)
    own = table.resolve_key(key)
    clients, windows = tree_connections(key, evs)
    if waited_s < wait_s:
        ids = {e.h.event_id for e in evs} if clients else set()
        for c in clients:
            srv = table.server_of(replace(c, trace_key=own))
            if srv is not None and srv.event_id not in ids:
                return Plan(True, {})
        if any(table.client_of(w.sighting) is None for w in windows):
            return Plan(True, {})

    used: set[bytes] = set()

    def target(w: Window) -> bytes | None:  # one window per client connection: windows in accept order
        c = table.client_of(w.sighting, exclude=used)
        if c is None:
            return None
        used.add(c.event_id)
        return table.resolve_key(c.trace_key)

    parts = split_tree(key, evs, target, whole, windows)
    publish: list[Sighting] = []
    if set(parts) == {own} or (len(parts) == 1 and own not in parts):
        dest = next(iter(parts))
        if dest != key:
            publish.append(Sighting("alias", "", key, b"", 0, target_key=dest))
        parts = {dest: parts[dest]}
    else:
        for k, part in parts.items():
            if k == key:
                continue
            part_ids = {e.h.event_id for e in part}
            publish.extend(replace(c, trace_key=k) for c in clients if c.event_id in part_ids)
    if own != key and key in parts:  # the tree was joined into another trace earlier: late events follow it
        parts[own] = parts.pop(key) + parts.get(own, [])
    return Plan(False, parts, tuple(publish))


def host_infos(events: Iterable[Event], table: EndpointTable) -> list[HostInfo]:
    """A HostInfo (addresses from the table) for each host of ``events`` that has none among them: a joined
    trace needs every host's addresses to match its connections (``streamedges.match_tcp``), and a host's own
    HostInfo travels under its agent's key, not its trees'. Stable event ids: the same addresses give the same
    event (deduplicated on re-emission)."""
    evs = list(events)
    have = {e.h.host_id for e in evs if isinstance(e, HostInfo)}
    first: dict[str, EventHeader] = {}  # the host's earliest event in the trace: the HostInfo's time and place
    for e in evs:
        if e.h.host_id not in have and (e.h.host_id not in first or e.h.mono_ns < first[e.h.host_id].mono_ns):
            first[e.h.host_id] = e.h
    out = []
    for host in sorted(first):
        addrs = table.addresses(host)
        if addrs:
            eid = hashlib.blake2b(f"hostinfo/{host}/{','.join(addrs)}".encode(), digest_size=16).digest()
            at = first[host]
            out.append(HostInfo(EventHeader(eid, host, at.pid, at.tid, at.mono_ns, at.wall_ns), host, addresses=addrs))
    return out


def ripe_windows(key: bytes, events: Iterable[Event], table: EndpointTable) -> dict[bytes, list[Event]]:
    """For a server tree still open that has accepted more than one connection (a long-lived server, which may
    never go idle): its *complete* windows whose client is known, by the key of the trace each joins — to
    forward now instead of when the tree closes. (A tree with one connection waits for its close: it may join
    its client's trace whole.) The caller removes what it forwards and plans the rest with ``whole=False``."""
    evs = list(events)
    _, windows = tree_connections(key, evs)
    if len(windows) < 2:
        return {}
    own = table.resolve_key(key)
    by_id = {e.h.event_id: e for e in evs}
    used: set[bytes] = set()
    out: dict[bytes, list[Event]] = defaultdict(list)
    for w in windows:
        c = table.client_of(w.sighting, exclude=used)
        if c is None:
            continue
        used.add(c.event_id)
        dest = table.resolve_key(c.trace_key)
        if w.complete and dest != own:
            out[dest].extend(by_id[i] for i in w.event_ids)
    return dict(out)


def join_trees(trees: dict[bytes, list[Event]], table: EndpointTable | None = None) -> dict[bytes, list[Event]]:
    """The join as the workers compute it, all at once (reference semantics, for tests and offline use): each
    tree's sightings into ``table``, then every tree planned (:func:`plan_tree`, no waiting), forwarded parts
    added to their destination, which is planned again, until nothing moves. Returns trace key -> its events."""
    table = table if table is not None else EndpointTable()
    scanner = SightingScanner()
    for key, evs in trees.items():
        for s in scanner.scan(key, evs):
            table.add(s)
    held = {k: {e.h.event_id: e for e in v} for k, v in trees.items()}
    final: dict[bytes, list[Event]] = {}
    dirty = list(trees)
    for _ in range(4 * len(trees) + 4):
        if not dirty:
            break
        now, dirty = dirty, []
        for key in now:
            plan = plan_tree(key, held[key].values(), table, 0.0, 0.0)
            for s in plan.publish:
                table.add(s)
            final.pop(key, None)
            for k, part in plan.parts.items():
                if k == key:
                    final[key] = part
                    continue
                dest = held.setdefault(k, {})
                new = [e for e in part if e.h.event_id not in dest]
                if new:
                    dest.update((e.h.event_id, e) for e in new)
                    dirty.append(k)
    return {k: v for k, v in final.items() if v}
