"""A recorded multi-process, two-host event set, shaped as the agents produce it (per-host producer ids and
sequences, Lamport = sequence, hlc = 0, mono_ns on each host's own monotonic clock, wall_ns = mono + that
host's start-up anchor).

Host A (10.0.0.1, the reference clock): ``coordinator`` pid 100 creates a pipe, forks pid 101 which writes
a line into it and exits; 100 reads it, reaps 101, then connects to B:7000 (non-blocking, EINPROGRESS) and
runs ``rounds`` request/reply exchanges. Host B (10.0.0.2) runs ``server`` pid 200, whose wall clock reads
``offset_b_ns`` ahead of A's; it accepts, answers each request, reports 2 lost ring-buffer events and exits.
Every message takes ``delay_ns`` on the wire. True times are A's wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sysweave.schemas.events import (
    CausalStamp,
    Event,
    EventHeader,
    HostInfo,
    LostEvents,
    ProcessEvent,
    ProcessEventType,
    SyscallSpan,
    make_event_id,
)

__all__ = ["T0", "Recorded", "recorded_events"]

T0 = 1_795_000_000_000_000_000  # true wall time of the run's start, Unix ns
US = 1_000


@dataclass
class _Host:
    name: str
    producer: int
    mono_base: int  # this host's CLOCK_MONOTONIC at T0
    wall_offset: int  # how far this host's wall clock reads ahead of true time
    seq: int = 0
    events: list[Event] = field(default_factory=list)

    def h(self, pid: int, t: int, dur: int = 0) -> EventHeader:
        """Header of an event starting at true time T0 + t (ns) lasting dur ns."""
        self.seq += 1
        mono = self.mono_base + t
        return EventHeader(make_event_id(self.producer, self.seq), self.name, pid, pid, mono,
                           T0 + t + self.wall_offset, dur, CausalStamp(self.seq, 0))

    def sc(self, proc: int, t: int, name: str, ret: int, /, dur: int = 2 * US, payload: bytes | None = None,
           **args: object) -> SyscallSpan:
        e = SyscallSpan(self.h(proc, t, dur), 0, name, ret, dict(args), payload,  # type: ignore[arg-type]
                        len(payload) if payload is not None else 0)
        self.events.append(e)
        return e

    def pe(self, pid: int, t: int, kind: ProcessEventType, dur: int = 0, **kw: object) -> None:
        self.events.append(ProcessEvent(self.h(pid, t, dur), kind, **kw))  # type: ignore[arg-type]


@dataclass
class Recorded:
    events: list[Event]
    by_host: dict[str, list[Event]]  # as each agent shipped them
    offset_b_ns: int


def recorded_events(offset_b_ns: int = 5_000_000, delay_ns: int = 40 * US, rounds: int = 4) -> Recorded:
    a = _Host("A", 0xA1, 1_000_000_000_000, 0)
    b = _Host("B", 0xB2, 7_000_000_000_000, offset_b_ns)
    for host, ip in ((a, "10.0.0.1"), (b, "10.0.0.2")):
        host.events.append(HostInfo(host.h(0, -2000 * US), f"{host.name.lower()}.example", boot_id=f"boot-{host.name}",
                                    kernel="6.1.0", arch="x86_64", clock_offset_ns=T0 + host.wall_offset - host.mono_base,
                                    addresses=(ip, "127.0.0.1")))
    # B: the server is up before A starts
    b.pe(200, -1000 * US, ProcessEventType.EXEC, filename="/usr/bin/python3", argv=("python3", "server.py", "7000"))
    b.sc(200, -900 * US, "socket", 3, domain=2, type=1, protocol=0)
    b.sc(200, -890 * US, "bind", 0, fd=3, addr="0.0.0.0:7000")
    b.sc(200, -880 * US, "listen", 0, fd=3, backlog=16)
    # A: pipe + fork + child writes + parent reads + wait
    a.pe(100, 0, ProcessEventType.EXEC, filename="/usr/bin/python3", argv=("python3", "coordinator.py"))
    a.sc(100, 10 * US, "pipe2", 0, pipefd=(3, 4), flags=0o2000000)
    a.sc(100, 20 * US, "clone", 101, dur=5 * US, flags=0x1200011)
    a.pe(100, 20 * US, ProcessEventType.FORK, dur=5 * US, parent_pid=100, child_pid=101)
    a.sc(101, 40 * US, "close", 0, fd=3)
    line = b"hello from the child\n"
    a.sc(101, 50 * US, "write", len(line), payload=line, fd=4)
    a.sc(101, 60 * US, "exit_group", 0, dur=0, status=0)
    a.pe(101, 61 * US, ProcessEventType.EXIT, exit_code=0)
    a.sc(100, 30 * US, "close", 0, fd=4)
    a.sc(100, 35 * US, "read", len(line), dur=20 * US, payload=line, fd=3)  # blocked until the child wrote
    a.sc(100, 65 * US, "wait4", 101, dur=10 * US, pid=-1, wstatus=0, options=0)
    a.pe(100, 65 * US, ProcessEventType.WAIT, dur=10 * US, parent_pid=100, child_pid=101, exit_code=0)
    # A connects to B; B's accept returns once the handshake arrives
    a.sc(100, 100 * US, "socket", 5, domain=2, type=0o4001, protocol=0)
    a.sc(100, 110 * US, "connect", -115, fd=5, addr="10.0.0.2:7000")
    b.sc(200, -870 * US, "accept4", 4, dur=110 * US + 870 * US + delay_ns, fd=3, addr="10.0.0.1:40312", flags=0)
    t = 300 * US
    for i in range(rounds):
        req, rep = b"job %03d\n" % i, b"done %03d\n" % i
        b_wait = t - 50 * US  # B's blocking receive starts before the request is sent
        a.sc(100, t, "sendto", len(req), payload=req, fd=5, flags=0, dest_addr="NULL")
        b.sc(200, b_wait, "recvfrom", len(req), dur=t + delay_ns - b_wait, payload=req, fd=4, flags=0)
        a_wait = t + 10 * US
        t += delay_ns + 100 * US  # B works on the job
        b.sc(200, t, "write", len(rep), payload=rep, fd=4)
        a.sc(100, a_wait, "read", len(rep), dur=t + delay_ns - a_wait, payload=rep, fd=5)
        t += delay_ns + 200 * US
    a.sc(100, t, "close", 0, fd=5)
    b.sc(200, t + delay_ns + 10 * US, "read", 0, fd=4)  # EOF
    b.events.append(LostEvents(b.h(200, t + delay_ns + 20 * US, 10 * US), "ringbuf", 2, "ring buffer full"))
    b.sc(200, t + delay_ns + 40 * US, "exit_group", 0, dur=0, status=0)
    b.pe(200, t + delay_ns + 41 * US, ProcessEventType.EXIT, exit_code=0)
    a.sc(100, t + 100 * US, "exit_group", 0, dur=0, status=0)
    a.pe(100, t + 101 * US, ProcessEventType.EXIT, exit_code=0)
    return Recorded(a.events + b.events, {"A": a.events, "B": b.events}, offset_b_ns)
