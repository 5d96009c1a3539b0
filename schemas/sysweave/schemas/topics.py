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

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from sysweave.schemas.errors import SchemaError

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


def dead_letter_headers(reason: str, source_topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    """Kafka headers attached to a dead-lettered message: why, and where it came from (for replay)."""
    return [
        ("sysweave.reason", reason.encode()[:4096]),
        ("sysweave.source", f"{source_topic}/{partition}@{offset}".encode()),
    ]


# --- typed stream messages (TOPIC_CONTROL, TOPIC_SAMPLING, TOPIC_ENDPOINTS) ---------------------------------


class MessageError(SchemaError):
    """A malformed control, sampling or endpoint message (names the field)."""


def _load_json(raw: bytes, what: str) -> dict[str, Any]:
    try:
        d = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(f"{what}: not JSON ({exc})") from None
    if not isinstance(d, dict):
        raise MessageError(f"{what}: expected an object, got {type(d).__name__}")
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
    cls: str = "syscall"

    def encode(self) -> bytes:
        d: dict[str, Any] = {"host_id": self.host_id, "threshold_ns": self.threshold_ns, "fraction": self.fraction}
        if self.cls != "syscall":
            d["class"] = self.cls
        return json.dumps(d).encode()

    @classmethod
    def decode(cls, raw: bytes) -> ControlDecision:
        d = _load_json(raw, "control decision")
        return cls(_field(d, "host_id", str, "control decision"), _field(d, "threshold_ns", int, "control decision"),
                   float(_field(d, "fraction", (int, float), "control decision", 1.0)),
                   _field(d, "class", str, "control decision", "syscall"))


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
