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
      │     ├── ComputeBlock ...      ├── TranspilerDecision ...    ├── Mark ...
      │     ├── GpuSample ...         (NVML readings of a GPU, or of this process on it)
      │     ├── ProcessEvent ...      (fork/clone, exec with argv, exit with code, wait)
      │     ├── SyscallAggregate ...  (exact per-syscall statistics, including what sampling dropped)
      │     └── FunctionAggregate ... (exact per-function statistics of probed functions, --uprobe/--gpu)
      ├── CausalEdge ...              (happens-before between events, possibly across hosts)
      ├── ClockEstimate ...           (per-host offset/drift against the reference host, with bounds)
      ├── HostInfo ...
      └── LostEvents ...              (what could not be captured or shipped, counted, never silent)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "EVENT_TYPES",
    "KIND_OF",
    "ArgValue",
    "CausalEdge",
    "CausalStamp",
    "ClockEstimate",
    "ComputeBlock",
    "EdgeKind",
    "Event",
    "EventHeader",
    "EventKind",
    "FileState",
    "FunctionAggregate",
    "GpuKernel",
    "GpuMemoryTransfer",
    "GpuSample",
    "HostInfo",
    "LostEvents",
    "Mark",
    "MemcpyKind",
    "ProcessEvent",
    "ProcessEventType",
    "ProcessSpan",
    "SampleReason",
    "SyscallAggregate",
    "SyscallSpan",
    "TranspilerDecision",
    "UnifiedTrace",
    "make_event_id",
]

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
    FILE_STATE = 12  # 13 is reserved (GPU_SAMPLE)
    GPU_SAMPLE = 13
    FUNCTION_AGGREGATE = 14
    MARK = 15


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
    DEFAULT = 6  # cuMemcpy/cuMemcpyAsync: the driver infers the direction from unified addresses


class EdgeKind(enum.IntEnum):
    FORK = 1  # parent's fork/clone -> child's first event
    EXIT_WAIT = 2  # child's exit -> parent's wait4 return
    PIPE = 3  # write -> read on the same pipe/unix socket (inode + byte offsets)
    TCP = 4  # send -> receive on one TCP connection (4-tuple + byte offsets)
    EXEC = 5  # exec -> the new image's first event
    SDK = 6  # explicit edge reported by the in-app SDK
    GPU_LAUNCH = 7  # CPU-side launch/copy call -> its device-side execution (CUPTI correlation id)
    GPU_COMPLETION = 8  # device-side execution -> the CPU-side call that waited for it and returned after it


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

    def int_arg(self, name: str, default: int = -1) -> int:
        """The integer argument ``name`` (an fd, flags, a pid); ``default`` when absent or not an integer."""
        v = self.args.get(name)
        return v if type(v) is int else default


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
    """A kernel: ``side`` "api" is the CPU-side launch call (uprobe on cuLaunchKernel; header = the calling
    thread and the call's duration), "device" its execution on the GPU (CUPTI; header = device start/end)."""

    h: EventHeader
    name: str
    device: int = 0
    stream: int = 0
    grid: tuple[int, ...] = ()
    block: tuple[int, ...] = ()
    correlation_id: int = 0
    side: str = ""


@dataclass(frozen=True, slots=True)
class GpuMemoryTransfer:
    """A copy: ``side`` "api" (the cuMemcpy* call, CPU side) or "device" (CUPTI), as for GpuKernel."""

    h: EventHeader
    kind: MemcpyKind
    bytes: int
    device: int = 0
    stream: int = 0
    correlation_id: int = 0
    side: str = ""


@dataclass(frozen=True, slots=True)
class ComputeBlock:
    """A compute region: one GEMM call, a vectorised loop, a hot function (SDK ``compute_block`` or a uprobe).

    ``op`` is what kind of work it is ("gemm", "simd", "fft", ...; "" unknown); ``elements`` how many items it
    processed (0: not known; uprobes: the captured argument, e.g. ``cos(n=arg1)``); ``symbol`` the function it
    measured ("" when not a function) -- the key that links a block to the ``TranspilerDecision`` whose
    ``target_symbol`` names it; ``source`` who reported it ("sdk", "uprobe"); ``decision_id`` the decision that
    produced it when the reporter knows it (SDK ``compute_block(..., decision=...)``); ``attrs`` free attributes.
    Example: ``ComputeBlock(h, "matmul 512", "gemm", 262144, "mm_kernel", "sdk", "D17", {"dtype": "f32"})``.
    """

    h: EventHeader
    name: str
    op: str = ""
    elements: int = 0
    symbol: str = ""
    source: str = ""
    decision_id: str = ""
    attrs: dict[str, ArgValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TranspilerDecision:
    """One decision a transpiler took: at build time (``sysweave trace --decisions LOG.jsonl``) or at run time (SDK).

    ``decision_id`` is the transpiler's own id (unique within one build); ``source_location`` the input it
    translated ("wc.py:12"); ``target_symbol`` the generated function the decision shaped (links to
    ``ComputeBlock.symbol`` and uprobed functions); ``kind`` what was decided ("loop-vectorised",
    ``"ownership"``, "allocation-elided", ...); ``chosen`` what it chose, ``alternatives`` what it rejected,
    ``reason`` why; ``source`` "sdk" or "log"; ``attrs`` free attributes (e.g. {"width": 8}).
    A decision from a log has no run-time instant: it carries the start of the trace and the root process.
    """

    h: EventHeader
    decision_id: str
    source_location: str = ""
    target_symbol: str = ""
    kind: str = ""
    chosen: str = ""
    alternatives: tuple[str, ...] = ()
    reason: str = ""
    source: str = ""
    attrs: dict[str, ArgValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Mark:
    """An instant the program marked itself (SDK ``mark(name, **attrs)``): a phase change, an iteration, a checkpoint."""

    h: EventHeader
    name: str
    attrs: dict[str, ArgValue] = field(default_factory=dict)


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
    backend: str = ""  # the capture that observed the host: "ebpf" | "ptrace"; "" for a host only seen as a peer


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


@dataclass(frozen=True, slots=True)
class FileState:
    """The final state of one path a traced tree wrote, recorded when the tree exits (validation by effects).

    ``path`` is absolute; ``cwd`` is the traced tree's working directory (paths compare relative to it).
    ``type``: "file", "dir", "symlink", "other" ("" when ``exists`` is False). ``mode``: ``st_mode & 0o7777``.
    ``content_hash``: BLAKE2b-256 hex of the whole content (files) or of the target (symlinks);
    ``content``: its first bytes (up to the capture's cap, ``len(content) < size`` marks truncation).
    Example: ``FileState(h, "/w/out.txt", True, "file", 0o644, 2, "9f..", b"ok", "", "/w")``.
    """

    h: EventHeader
    path: str
    exists: bool
    type: str = ""
    mode: int = 0
    size: int = 0
    content_hash: str = ""
    content: bytes = b""
    target: str = ""
    cwd: str = ""


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One NVML reading of GPU ``device`` (``process_pid`` 0) or of one traced process on it.

    ``None`` means NVML could not say (not supported by this device/driver), never zero. Device readings
    carry the traced root process in the header (they sit on its timeline); process readings that process.
    Utilisations are percent over NVML's last sample period; ``power_mw`` milliwatts; ``sm_clock_mhz`` MHz.
    Example: ``GpuSample(h, 0, 0, "NVIDIA H200", 87, 40, 12 << 30, 141 << 30, 350_000, 1980)``.
    """

    h: EventHeader
    device: int
    process_pid: int = 0
    name: str = ""
    gpu_util_pct: int | None = None
    mem_util_pct: int | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    power_mw: int | None = None
    sm_clock_mhz: int | None = None


@dataclass(frozen=True, slots=True)
class FunctionAggregate:
    """Exact statistics of one probed function (uprobes) in one process over the header's window.

    ``hist_log2[i]`` counts calls whose duration in ns lies in [2**i, 2**(i+1)), as for syscalls; the counts
    include the calls below the threshold that were not shipped as ComputeBlock/GpuKernel events.
    """

    h: EventHeader
    symbol: str
    library: str
    calls: int
    total_ns: int
    hist_log2: tuple[int, ...] = ()
    source: str = "uprobe"


Event = (
    SyscallSpan | ProcessEvent | GpuKernel | GpuMemoryTransfer | ComputeBlock | TranspilerDecision
    | SyscallAggregate | CausalEdge | HostInfo | LostEvents | ClockEstimate | FileState
    | GpuSample | FunctionAggregate | Mark
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
    EventKind.FILE_STATE: FileState,
    EventKind.GPU_SAMPLE: GpuSample,
    EventKind.FUNCTION_AGGREGATE: FunctionAggregate,
    EventKind.MARK: Mark,
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
