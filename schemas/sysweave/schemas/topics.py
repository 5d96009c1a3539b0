"""Kafka topics and partition keys: the contract between agents, stream workers and the validator.

Partitioning: agents key raw event batches by **trace key** = "<host_id>/<root pid>" of the traced process
tree, so one process's events stay in order on one partition and all processes of a tree land on the same
worker, which can assemble it without a shuffle. A job that spans hosts needs no label: the stream workers
join trees that talk over TCP (``sysweave.streams.join``: each connection's sightings on TOPIC_ENDPOINTS,
read by every worker; each accepted connection's *window* of a server tree — not the whole server — is
forwarded back to TOPIC_EVENTS under its client's key with the header :data:`HEADER_JOINED`; a tree serving a
single trace joins it whole). A trace label (``--trace-label``) still replaces the key when given. A single
very busy tree cannot be spread over several workers.

Sampling: each worker reports per-host counts (:class:`HostCounts`) to TOPIC_SAMPLING keyed by host, so one
worker — the owner of that partition — makes each host's decision (:class:`ControlDecision`).

Labels travel on: the stream worker gives a trace whose key is a label (:func:`label_of_key`) that label
(``UnifiedTrace.label``) and sends it with the emitted trace on TOPIC_TRACES as the Kafka header
``sysweave.label`` (:data:`HEADER_LABEL`, UTF-8; absent when the trace has none); the validator service
reads it back from there, so the stored trace is findable by its label.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

import msgpack

from sysweave.schemas import codec
from sysweave.schemas.errors import SchemaError

__all__ = ["ALL_TOPICS", "ENV_LABEL", "ENV_TRACEPARENT", "HEADER_JOINED", "HEADER_LABEL", "HEADER_REASON",
           "HEADER_SOURCE", "SIGHTING_ROLES", "TOPIC_CONTROL", "TOPIC_DEAD_LETTER", "TOPIC_ENDPOINTS", "TOPIC_EVENTS",
           "TOPIC_SAMPLING", "TOPIC_SPECS", "TOPIC_TRACES", "TOPIC_VALIDATION", "ControlDecision", "DeadLetter",
           "EventBatchMessage", "HostCounts", "MessageError", "OperationClass", "Sighting", "TopicSpec", "TraceMessage",
           "ValidationRequest", "header_map", "key_from_env", "label_of_key", "trace_id_of_key",
           "trace_key"]

# SYSWEAVE_TOPIC_SUFFIX isolates a deployment's (or a benchmark's) topics on a shared broker.
_SUFFIX: Final = os.environ.get("SYSWEAVE_TOPIC_SUFFIX", "")

TOPIC_EVENTS: Final = "sysweave.events.v1" + _SUFFIX  # agent batches (codec envelopes), key = trace key
TOPIC_CONTROL: Final = "sysweave.control.v1" + _SUFFIX  # sampling decisions back to agents, key = host id
TOPIC_TRACES: Final = "sysweave.traces.v1" + _SUFFIX  # assembled traces and updates, key = trace id (hex)
TOPIC_VALIDATION: Final = "sysweave.validation.v1" + _SUFFIX  # validation requests, key = request id
TOPIC_DEAD_LETTER: Final = "sysweave.deadletter.v1" + _SUFFIX  # poison messages with the reason in headers
# stream-internal: connection sightings for the cross-host join (every worker reads all), key = server port
TOPIC_ENDPOINTS: Final = "sysweave.endpoints.v1" + _SUFFIX
# stream-internal: each worker's per-host counts per interval, key = host id (one worker owns each host)
TOPIC_SAMPLING: Final = "sysweave.sampling.v1" + _SUFFIX

ALL_TOPICS: Final = (TOPIC_EVENTS, TOPIC_CONTROL, TOPIC_TRACES, TOPIC_VALIDATION, TOPIC_DEAD_LETTER, TOPIC_ENDPOINTS,
                     TOPIC_SAMPLING)

_HOUR_MS: Final = 3_600_000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How ``sysweave topics create`` makes a topic: its name, partitions (None: the operator's
    ``--partitions``, sized from events/s, see docs/operations.md) and topic-level configuration."""

    name: str
    partitions: int | None
    config: tuple[tuple[str, str], ...]


# Retention: raw events only until the workers have assembled them (a day to replay after an outage); assembled
# traces until the validator has stored them; poison messages long enough for someone to look.
TOPIC_SPECS: Final = (
    TopicSpec(TOPIC_EVENTS, None, (("retention.ms", str(24 * _HOUR_MS)), ("compression.type", "producer"))),
    TopicSpec(TOPIC_CONTROL, None, (("retention.ms", str(1 * _HOUR_MS)),)),
    TopicSpec(TOPIC_TRACES, None, (("retention.ms", str(72 * _HOUR_MS)), ("compression.type", "producer"))),
    TopicSpec(TOPIC_VALIDATION, None, (("retention.ms", str(168 * _HOUR_MS)),)),
    TopicSpec(TOPIC_DEAD_LETTER, 1, (("retention.ms", str(336 * _HOUR_MS)),)),
    TopicSpec(TOPIC_ENDPOINTS, None, (("retention.ms", str(1 * _HOUR_MS)),)),
    TopicSpec(TOPIC_SAMPLING, None, (("retention.ms", str(1 * _HOUR_MS)),)),
)
HEADER_LABEL: Final = "sysweave.label"  # TOPIC_TRACES header: the trace's label (UTF-8), absent when none
# TOPIC_EVENTS header of a batch a stream worker forwarded into another trace (the cross-host join): the key
# of the tree it came from. Such events are settled (their processes need not exit in the receiving trace)
# and are not counted again by sampling.
HEADER_JOINED: Final = "sysweave.joined"


def trace_key(host_id: str, root_pid: int) -> bytes:
    """Partition key of a traced process tree's events. Example: trace_key("h1", 42) == b"h1/42"."""
    return f"{host_id}/{root_pid}".encode()


ENV_LABEL: Final = "SYSWEAVE_TRACE_LABEL"
ENV_TRACEPARENT: Final = "TRACEPARENT"
_W3C: Final = b"w3c/"


def key_from_env(entries: Iterable[str]) -> bytes | None:
    """The trace key a traced program asks for in its own environment (read at exec): its
    ``SYSWEAVE_TRACE_LABEL`` (the label is the key), else a valid W3C ``TRACEPARENT``, whose trace id becomes
    the trace id (key ``w3c/<32 hex>``, :func:`trace_id_of_key`); None when neither.
    Example: key_from_env(["TRACEPARENT=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]) ==
    b"w3c/4bf92f3577b34da6a3ce929d0e0e4736"."""
    env = dict(e.split("=", 1) for e in entries if "=" in e)
    label = env.get(ENV_LABEL, "").strip()
    if label:
        return label.encode()[:256]
    parts = env.get(ENV_TRACEPARENT, "").strip().lower().split("-")
    if len(parts) >= 4 and len(parts[0]) == 2 and parts[0] != "ff" and len(parts[1]) == 32 and len(parts[2]) == 16:
        try:
            tid = bytes.fromhex(parts[1])
            bytes.fromhex(parts[0] + parts[2])
        except ValueError:
            return None
        if any(tid):
            return _W3C + parts[1].encode()
    return None


def trace_id_of_key(key: bytes) -> bytes | None:
    """The 16-byte trace id a key fixes itself (a W3C traceparent's), or None (the id is then derived)."""
    if key.startswith(_W3C) and len(key) == len(_W3C) + 32:
        try:
            return bytes.fromhex(key[len(_W3C):].decode())
        except ValueError:
            return None
    return None


def label_of_key(key: bytes, hosts: Iterable[str]) -> str:
    """The trace label a TOPIC_EVENTS key carries: "" for a process-tree key — "<host>/<pid>" with <host> one
    of the trace's hosts — and the key itself (UTF-8) otherwise. A label spelled like a tree key of one of the
    trace's own hosts cannot be told apart and counts as none.
    Example: label_of_key(b"h1/42", ["h1"]) == "" and label_of_key(b"job-7", ["h1"]) == "job-7"."""
    if trace_id_of_key(key) is not None:
        return ""  # a W3C trace: its id is its name
    text = key.decode("utf-8", "replace")
    host, sep, pid = text.rpartition("/")
    return "" if sep and pid.isdigit() and host in set(hosts) else text


HEADER_REASON: Final = "sysweave.reason"  # TOPIC_DEAD_LETTER: why the message was refused (UTF-8)
HEADER_SOURCE: Final = "sysweave.source"  # TOPIC_DEAD_LETTER: "<topic>/<partition>@<offset>" it came from


def header_map(headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None) -> dict[str, bytes]:
    """Kafka headers as one dict, whatever the client gave (kafka-python: a list of pairs; Faust: a list or a
    dict by version; None when absent). A repeated header keeps its last value."""
    if not headers:
        return {}
    return dict(headers.items() if isinstance(headers, Mapping) else headers)


class OperationClass(enum.StrEnum):
    """The classes of timed operation that sampling thresholds apply to, each with its own threshold (the
    sampling authority's per-class defaults, the agent's BPF map slots, ``ControlDecision.cls``)."""

    SYSCALL = "syscall"
    COMPUTE = "compute"
    GPU_KERNEL = "gpu_kernel"
    MEMCPY = "memcpy"


# --- typed topic messages: every producer and consumer goes through these -----------------------------------


class MessageError(SchemaError):
    """A malformed topic message (control, sampling, endpoint, validation request, event batch, trace):
    names the field."""


@dataclass(frozen=True, slots=True)
class EventBatchMessage:
    """TOPIC_EVENTS: one codec batch of events of one trace key (agents: producer id and sequence of the
    agent; a stream worker forwarding into another trace: producer id 0). ``joined_from``: the key of the tree
    a worker forwarded it from (header :data:`HEADER_JOINED`), None for an agent's batch."""

    key: bytes
    batch: codec.Batch
    joined_from: bytes | None = None

    def encode(self) -> bytes:
        return codec.encode_batch(self.batch)

    def headers(self) -> list[tuple[str, bytes]]:
        return [] if self.joined_from is None else [(HEADER_JOINED, self.joined_from)]

    @classmethod
    def decode(cls, key: bytes | None, value: bytes,
               headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None = None) -> EventBatchMessage:
        """Raises :class:`codec.DecodeError` (a :class:`SchemaError`) naming what is wrong with the batch."""
        return cls(key or b"", codec.decode_batch(value), header_map(headers).get(HEADER_JOINED))


@dataclass(frozen=True, slots=True)
class TraceMessage:
    """TOPIC_TRACES: one assembled trace (or an update of one) as a codec batch of its events with corrected
    times, stamps and edges. Kafka key = the trace id in hex; envelope producer id = the trace id's first 8
    bytes, sequence = late events merged into this emission (0 for the first); header :data:`HEADER_LABEL` =
    its label (absent when none). The stream worker writes the value straight from its pipeline's output
    (``streams.pipeline.wire.encode_finished``, the same bytes as :meth:`encode`) with :meth:`key_for` and
    :meth:`headers_for`."""

    trace_id: bytes
    label: str
    batch: codec.Batch

    @staticmethod
    def key_for(trace_id: bytes) -> bytes:
        return trace_id.hex().encode()

    @staticmethod
    def headers_for(label: str) -> list[tuple[str, bytes]]:
        return [(HEADER_LABEL, label.encode())] if label else []

    def key(self) -> bytes:
        return self.key_for(self.trace_id)

    def headers(self) -> list[tuple[str, bytes]]:
        return self.headers_for(self.label)

    def encode(self) -> bytes:
        return codec.encode_batch(self.batch)

    @property
    def late_events(self) -> int:
        return self.batch.sequence

    @classmethod
    def decode(cls, key: bytes | None, value: bytes,
               headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None = None) -> TraceMessage:
        """Raises :class:`MessageError` for a key that is not a trace id, ``codec.DecodeError`` for the batch."""
        try:
            trace_id = bytes.fromhex((key or b"").decode())
        except (ValueError, UnicodeDecodeError):
            trace_id = b""
        if len(trace_id) != 16:
            raise MessageError(f"trace message: the key {key!r} is not a 32-hex-digit trace id")
        label = header_map(headers).get(HEADER_LABEL, b"").decode("utf-8", "replace")
        return cls(trace_id, label, codec.decode_batch(value))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """TOPIC_DEAD_LETTER: a refused message, key and value unchanged, with why (:data:`HEADER_REASON`) and where
    it came from (:data:`HEADER_SOURCE`, "<topic>/<partition>@<offset>", for replay)."""

    reason: str
    source_topic: str
    partition: int
    offset: int

    def headers(self) -> list[tuple[str, bytes]]:
        return [(HEADER_REASON, self.reason.encode()[:4096]),
                (HEADER_SOURCE, f"{self.source_topic}/{self.partition}@{self.offset}".encode())]

    @classmethod
    def decode(cls, headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None) -> DeadLetter:
        h = header_map(headers)
        source = h.get(HEADER_SOURCE, b"").decode("utf-8", "replace")
        topic, _, at = source.rpartition("/")
        partition, _, offset = at.partition("@")
        if HEADER_REASON not in h or not topic or not partition.isdigit() or not offset.isdigit():
            raise MessageError(f"dead letter: headers {HEADER_REASON!r} and {HEADER_SOURCE!r} "
                               f"(<topic>/<partition>@<offset>) expected, got {sorted(h)}")
        return cls(h[HEADER_REASON].decode("utf-8", "replace"), topic, int(partition), int(offset))


def _load_json(raw: bytes | str, what: str) -> dict[str, Any]:
    try:
        d = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(f"{what}: not JSON ({exc})") from None
    if not isinstance(d, dict):
        raise MessageError(f"{what}: expected a JSON object, got {type(d).__name__}")
    return d


def _field(d: dict[str, Any], name: str, typ: type | tuple[type, ...], what: str, default: Any = ...) -> Any:
    if name not in d:
        if default is ...:
            raise MessageError(f"{what}: missing {name!r}")
        return default
    v = d[name]
    if not isinstance(v, typ) or (isinstance(v, bool) and typ is not bool):
        raise MessageError(f"{what}.{name}: expected {typ}, got {v!r}")
    return v


@dataclass(frozen=True, slots=True)
class ControlDecision:
    """TOPIC_CONTROL (key = host id): the sampling authority's decision for one host; agents write
    ``threshold_ns`` into the BPF map slot of ``cls``. JSON, e.g.
    ``{"host_id": "h1", "threshold_ns": 65536, "fraction": 0.2}`` ("class" omitted for "syscall")."""

    host_id: str
    threshold_ns: int
    fraction: float = 1.0
    cls: OperationClass = OperationClass.SYSCALL

    def key(self) -> bytes:
        return self.host_id.encode()

    def encode(self) -> bytes:
        d: dict[str, Any] = {"host_id": self.host_id, "threshold_ns": self.threshold_ns, "fraction": self.fraction}
        if self.cls is not OperationClass.SYSCALL:
            d["class"] = self.cls.value
        return json.dumps(d).encode()

    @classmethod
    def decode(cls, raw: bytes) -> ControlDecision:
        w = "control decision"
        d = _load_json(raw, w)
        name = _field(d, "class", str, w, OperationClass.SYSCALL.value)
        try:
            op = OperationClass(name)
        except ValueError:
            raise MessageError(f"{w}.class: {name!r} is not one of {[c.value for c in OperationClass]}") from None
        threshold = _field(d, "threshold_ns", int, w)
        if threshold < 0:
            raise MessageError(f"{w}.threshold_ns: negative")
        return cls(_field(d, "host_id", str, w), threshold, float(_field(d, "fraction", (int, float), w, 1.0)), op)


@dataclass(frozen=True, slots=True)
class HostCounts:
    """TOPIC_SAMPLING (key = host id): what one worker saw of one host in one of its intervals — events
    shipped by the host's agent and the merged latency histogram (log2 buckets) of its exact aggregates. The
    worker owning the host's partition of TOPIC_SAMPLING sums every worker's reports and alone decides."""

    host_id: str
    worker: str
    shipped: int
    interval_s: float
    hist_log2: tuple[int, ...] = ()

    def key(self) -> bytes:
        return self.host_id.encode()

    def encode(self) -> bytes:
        return json.dumps({"host_id": self.host_id, "worker": self.worker, "shipped": self.shipped,
                           "interval_s": self.interval_s, "hist_log2": list(self.hist_log2)}).encode()

    @classmethod
    def decode(cls, raw: bytes) -> HostCounts:
        w = "host counts"
        d = _load_json(raw, w)
        hist = _field(d, "hist_log2", list, w, [])
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in hist):
            raise MessageError(f"{w}.hist_log2: expected non-negative integers")
        shipped = _field(d, "shipped", int, w)
        if shipped < 0:
            raise MessageError(f"{w}.shipped: negative")
        return cls(_field(d, "host_id", str, w), _field(d, "worker", str, w, ""), shipped,
                   float(_field(d, "interval_s", (int, float), w)), tuple(hist))


SIGHTING_ROLES: Final = ("client", "server", "host", "alias")


@dataclass(frozen=True, slots=True)
class Sighting:
    """TOPIC_ENDPOINTS: one end of a TCP connection as a traced tree saw it (``sysweave.streams.join``).

    ``client``: a connect from ``host`` to ``server_ip:server_port``; ``trace_key`` = the key of the trace it
    belongs to; ``client_ip``/``client_port`` when the client revealed them (bind, getsockname), else ""/0.
    ``server``: an accept on ``host`` of peer ``client_ip:client_port`` on listening port ``server_port`` (0:
    unknown), ``trace_key`` = the server tree's key. ``first``: the first bytes sent (client) or received
    (server), to tell concurrent connections apart. ``wall_ns``: when the connect started (client) or the
    accept returned (server: a blocking accept starts long before its client connects). ``host``:
    ``addresses`` of a host. ``alias``: the tree ``trace_key`` was joined whole into the trace ``target_key``.
    A msgpack array; Kafka key = the server port."""

    role: str
    host: str
    trace_key: bytes
    event_id: bytes
    server_port: int
    server_ip: str = ""
    client_ip: str = ""
    client_port: int = 0
    wall_ns: int = 0
    first: bytes = b""
    addresses: tuple[str, ...] = ()
    target_key: bytes = b""

    def message_key(self) -> bytes:
        return str(self.server_port).encode() if self.role in ("client", "server") else self.role.encode()

    def encode(self) -> bytes:
        out: bytes = msgpack.packb([self.role, self.host, self.trace_key, self.event_id, self.server_port, self.server_ip,
                              self.client_ip, self.client_port, self.wall_ns, self.first, list(self.addresses),
                              self.target_key], use_bin_type=True)
        return out

    @classmethod
    def decode(cls, raw: bytes) -> Sighting:
        try:
            v = msgpack.unpackb(raw, raw=False, strict_map_key=True)
        except Exception as exc:  # msgpack raises several types on bad input
            raise MessageError(f"endpoint sighting: not msgpack ({exc})") from None
        types = (str, str, bytes, bytes, int, str, str, int, int, bytes, list, bytes)
        if not isinstance(v, list) or len(v) != len(types):
            raise MessageError(f"endpoint sighting: expected an array of {len(types)}")
        for i, (x, t) in enumerate(zip(v, types)):
            if not isinstance(x, t) or isinstance(x, bool):
                raise MessageError(f"endpoint sighting[{i}]: expected {t.__name__}, got {x!r}")
        if v[0] not in SIGHTING_ROLES or not all(isinstance(a, str) for a in v[10]):
            raise MessageError(f"endpoint sighting: bad role {v[0]!r} or addresses")
        return cls(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], tuple(v[10]), v[11])


@dataclass(frozen=True, slots=True)
class ValidationRequest:
    """TOPIC_VALIDATION (key = request id; JSON): two stored traces, by id or label, to compare.

    >>> req = ValidationRequest("job-faithful", "job-broken", request_id="r1")
    >>> ValidationRequest.decode(req.encode()) == req
    True
    >>> try:
    ...     ValidationRequest.decode(b'{"original_trace_id": 3}')
    ... except MessageError as exc:
    ...     print(exc)
    bad validation request: original_trace_id must be a string
    """

    original_trace_id: str
    transpiled_trace_id: str
    request_id: str = ""
    original_label: str = ""  # what the user called each side (shown in the stored report)
    transpiled_label: str = ""
    version: int = 1

    def key(self) -> bytes:
        return self.request_id.encode()

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> ValidationRequest:
        w = "bad validation request"
        d = _load_json(raw, w)
        for name in ("original_trace_id", "transpiled_trace_id"):
            if not isinstance(d.get(name), str) or not d[name]:
                raise MessageError(f"{w}: {name} must be a string")
        for name in ("request_id", "original_label", "transpiled_label"):
            if not isinstance(d.get(name, ""), str):
                raise MessageError(f"{w}: {name} must be a string")
        if d.get("version", 1) != 1:
            raise MessageError(f"{w}: version {d['version']!r} is not understood (1 is)")
        return cls(d["original_trace_id"], d["transpiled_trace_id"], d.get("request_id", ""),
                   d.get("original_label", ""), d.get("transpiled_label", ""))
