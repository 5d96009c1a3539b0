"""The unified trace model: the events every sysweave component produces and consumes.

Every event starts with the same header (:class:`EventHeader`):

* ``event_id``  -- 16 bytes, globally unique: 8 bytes of producer id + 8 bytes of the producer's sequence.
  Consumers deduplicate on it (Kafka redelivery, spool replay).
* ``host_id``   -- the host (agent) that observed the event.
* ``pid``/``tid`` -- kernel tgid and thread id on that host.
* ``mono_ns``   -- CLOCK_MONOTONIC of the observing host, in nanoseconds (start of the operation).
* ``wall_ns``   -- wall-clock anchor: Unix time in nanoseconds for ``mono_ns``, computed by the producer
  from one (CLOCK_REALTIME - CLOCK_MONOTONIC) offset taken at start-up, so events of one host stay
  ordered even if NTP steps the wall clock. Cross-host correction happens at assembly.
* ``duration_ns`` -- length of the operation in nanoseconds (0 for instantaneous events).
* ``stamp``     -- causal stamp: a Lamport counter and a hybrid logical clock value (see ``clocks``).

The event kinds (``EventKind``) are fixed integers; they are the first element of an event on the wire
and never change meaning (add new ones, never renumber).

Assembled form::

    UnifiedTrace
      ├── ProcessSpan (one per process, any host)
      │     ├── SyscallSpan ...       ├── GpuKernel ...        ├── GpuMemoryTransfer ...
      │     ├── ComputeBlock ...      ├── TranspilerDecision ...
      │     ├── ProcessEvent ...      (fork/clone, exec with argv, exit with code, wait)
      │     └── SyscallAggregate ...  (exact per-syscall statistics, including what sampling dropped)
      ├── CausalEdge ...              (happens-before between events, possibly across hosts)
      ├── ClockEstimate ...           (per-host offset/drift against the reference host, with bounds)
      ├── HostInfo ...
      └── LostEvents ...              (what could not be captured or shipped, counted, never silent)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

ArgValue = int | str | bytes | bool | None | tuple[int, ...] | tuple[str, ...]


class EventKind(enum.IntEnum):
    SYSCALL = 1
    PROCESS = 2
    GPU_KERNEL = 3
    GPU_MEMCPY = 4
    COMPUTE = 5
    TRANSPILER = 6
    AGGREGATE = 7
    EDGE = 8
    HOST = 9
    LOST = 10
    CLOCK = 11


class ProcessEventType(enum.IntEnum):
    FORK = 1  # fork/vfork/clone of a new process (not a thread)
    THREAD = 2  # clone of a thread in the same process
    EXEC = 3
    EXIT = 4
    WAIT = 5  # a wait4/waitid that reaped ``child_pid``


class MemcpyKind(enum.IntEnum):
    HTOD = 1
    DTOH = 2
    DTOD = 3
    HTOH = 4
    PEER = 5


class EdgeKind(enum.IntEnum):
    FORK = 1  # parent's fork/clone -> child's first event
    EXIT_WAIT = 2  # child's exit -> parent's wait4 return
    PIPE = 3  # write -> read on the same pipe/unix socket (inode + byte offsets)
    TCP = 4  # send -> receive on one TCP connection (4-tuple + byte offsets)
    EXEC = 5  # exec -> the new image's first event
    SDK = 6  # explicit edge reported by the in-app SDK


class SampleReason(enum.IntFlag):
    """Why a per-event record was shipped (a bit set; 0 never appears on the wire)."""

    SLOW = 1  # duration >= the class threshold
    OBSERVABLE = 2  # observable I/O under validation capture
    FAILED = 4  # returned an error
    FIRST = 8  # first occurrence of this (process, syscall)
    ALL = 16  # sampling disabled (--no-sampling)


@dataclass(frozen=True, slots=True)
class CausalStamp:
    """Lamport counter and packed hybrid logical clock (``clocks.HybridLogicalClock``) of an event."""

    lamport: int = 0
    hlc: int = 0


@dataclass(frozen=True, slots=True)
class EventHeader:
    event_id: bytes
    host_id: str
    pid: int
    tid: int
    mono_ns: int
    wall_ns: int
    duration_ns: int = 0
    stamp: CausalStamp = field(default_factory=CausalStamp)


@dataclass(frozen=True, slots=True)
class SyscallSpan:
    """One system call. ``ret`` is the raw return value (negative errno on failure, as the kernel returns it).

    ``args`` holds decoded arguments by name (paths, flags, fds, byte counts, sockaddrs, argv) for the
    observable set; ``payload`` the first bytes written/sent (``payload_len`` the full count, so
    ``len(payload) < payload_len`` marks truncation).
    """

    h: EventHeader
    nr: int
    name: str
    ret: int
    args: dict[str, ArgValue] = field(default_factory=dict)
    payload: bytes | None = None
    payload_len: int = 0
    reason: int = 0

    @property
    def failed(self) -> bool:
        return -4096 < self.ret < 0

    @property
    def errno(self) -> int:
        return -self.ret if self.failed else 0


@dataclass(frozen=True, slots=True)
class ProcessEvent:
    h: EventHeader
    type: ProcessEventType
    parent_pid: int = 0
    child_pid: int = 0
    filename: str = ""
    argv: tuple[str, ...] = ()
    exit_code: int | None = None
    signal: int | None = None
    comm: str = ""


@dataclass(frozen=True, slots=True)
class GpuKernel:
    h: EventHeader
    name: str
    device: int = 0
    stream: int = 0
    grid: tuple[int, ...] = ()
    block: tuple[int, ...] = ()
    correlation_id: int = 0


@dataclass(frozen=True, slots=True)
class GpuMemoryTransfer:
    h: EventHeader
    kind: MemcpyKind
    bytes: int
    device: int = 0
    stream: int = 0
    correlation_id: int = 0


@dataclass(frozen=True, slots=True)
class ComputeBlock:
    """A SIMD/BLAS compute region reported by the SDK (e.g. one GEMM call)."""

    h: EventHeader
    name: str
    kind: str = ""  # "blas", "simd", ...
    flops: int = 0
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class TranspilerDecision:
    h: EventHeader
    source_location: str
    decision: str
    rationale: str = ""
    target: str = ""


@dataclass(frozen=True, slots=True)
class SyscallAggregate:
    """Exact statistics of one (process, syscall) over [``h.mono_ns``, ``h.mono_ns + h.duration_ns``).

    ``hist_log2[i]`` counts calls whose latency in ns lies in [2**i, 2**(i+1)) (bucket 0 also holds 0 ns).
    These counts include calls that sampling did not ship, so statistics stay exact.
    """

    h: EventHeader
    nr: int
    name: str
    calls: int
    errors: int
    total_ns: int
    hist_log2: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class CausalEdge:
    """``src`` happened before ``dst`` (event ids), established by ``kind``."""

    h: EventHeader
    src: bytes
    dst: bytes
    kind: EdgeKind
    detail: str = ""


@dataclass(frozen=True, slots=True)
class HostInfo:
    h: EventHeader
    hostname: str
    boot_id: str = ""
    kernel: str = ""
    arch: str = ""
    clock_offset_ns: int = 0  # wall - mono at the producer's start (the wall-clock anchor)
    addresses: tuple[str, ...] = ()  # the host's IP addresses (to match TCP connections seen from both ends)


@dataclass(frozen=True, slots=True)
class LostEvents:
    """``count`` events were lost at ``source`` (e.g. "ringbuf", "queue", "spool") during the header's window."""

    h: EventHeader
    source: str
    count: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ClockEstimate:
    """Offset of ``host`` against ``reference``: true_wall = observed_wall - offset_ns (± bound_ns).

    ``drift_ppb`` is the rate of change of the offset in parts per billion.
    """

    h: EventHeader
    host: str
    reference: str
    offset_ns: int
    bound_ns: int
    drift_ppb: int = 0
    samples: int = 0


Event = (
    SyscallSpan | ProcessEvent | GpuKernel | GpuMemoryTransfer | ComputeBlock | TranspilerDecision
    | SyscallAggregate | CausalEdge | HostInfo | LostEvents | ClockEstimate
)

EVENT_TYPES: dict[EventKind, type] = {
    EventKind.SYSCALL: SyscallSpan,
    EventKind.PROCESS: ProcessEvent,
    EventKind.GPU_KERNEL: GpuKernel,
    EventKind.GPU_MEMCPY: GpuMemoryTransfer,
    EventKind.COMPUTE: ComputeBlock,
    EventKind.TRANSPILER: TranspilerDecision,
    EventKind.AGGREGATE: SyscallAggregate,
    EventKind.EDGE: CausalEdge,
    EventKind.HOST: HostInfo,
    EventKind.LOST: LostEvents,
    EventKind.CLOCK: ClockEstimate,
}
KIND_OF: dict[type, EventKind] = {t: k for k, t in EVENT_TYPES.items()}


def make_event_id(producer_id: int, seq: int) -> bytes:
    """16-byte event id: producer id (u64, random per producer start) then its sequence (u64), big-endian."""
    return producer_id.to_bytes(8, "big") + seq.to_bytes(8, "big")


@dataclass(slots=True)
class ProcessSpan:
    """One process of a trace with everything it did (assembled, not a wire type)."""

    host_id: str
    pid: int
    parent: tuple[str, int] | None = None  # (host_id, pid) of the parent process, if traced
    argv: tuple[str, ...] = ()
    start_wall_ns: int = 0
    end_wall_ns: int = 0
    exit_code: int | None = None
    signal: int | None = None
    events: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class UnifiedTrace:
    trace_id: bytes  # 16 bytes, also the OTLP trace id
    processes: dict[tuple[str, int], ProcessSpan] = field(default_factory=dict)
    edges: list[CausalEdge] = field(default_factory=list)
    clocks: list[ClockEstimate] = field(default_factory=list)
    hosts: list[HostInfo] = field(default_factory=list)
    lost: list[LostEvents] = field(default_factory=list)
    late_events: int = 0  # events that arrived after the trace closed (merged, counted)
    closed: bool = False
    label: str = ""  # the --trace-label / --label the trace was started with ("" when none)
