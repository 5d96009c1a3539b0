"""The transpiler's decision log (``sysweave trace --decisions FILE.jsonl``): one JSON object per line.

    {"id": "D17", "kind": "loop-vectorised", "chosen": "simd x8", "alternatives": ["scalar", "simd x4"],
     "reason": "no loop-carried dependency", "source_location": "wc.py:12", "target_symbol": "count_words",
     "attrs": {"width": 8, "speedup_estimate": 3.5}}

``id`` is required (a non-empty string, unique within one build); every other field is optional: strings,
``alternatives`` a list of strings, ``attrs`` an object whose values are integers, strings, booleans, null,
floats (kept as their decimal text) or lists of integers or of strings. Blank lines are skipped. Any other
line -- not JSON, not an object, an unknown field, a wrong type -- is reported with its line number and
skipped, and counted (``LostEvents`` source ``decision_log``). docs/sdk.md has the schema.

Pure: :func:`parse_decision_log` reads text; :func:`decision_events` turns records into
``TranspilerDecision`` events of one process (a log decision has no run-time instant: it carries the moment
the trace started).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from sysweave.schemas.errors import AgentError
from sysweave.schemas.events import ArgValue, CausalStamp, Event, EventHeader, LostEvents, TranspilerDecision, make_event_id

__all__ = ["BadLine", "DecisionLog", "DecisionLogError", "decision_events", "log_events", "parse_decision_log",
           "read_decision_log"]

MAX_LINE = 1 << 20
MAX_STR = 64 * 1024  # the codec's string limit
MAX_ATTRS = 64  # the codec's map limit
_STRING_FIELDS = ("kind", "chosen", "reason", "source_location", "target_symbol")
KNOWN_FIELDS = frozenset({"id", "alternatives", "attrs", *_STRING_FIELDS})
_I64 = (-(2**63), 2**64 - 1)


class DecisionLogError(AgentError):
    """The decision log cannot be read at all (missing, unreadable, not UTF-8 text)."""


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(slots=True)
class DecisionLog:
    """What a log held: the decisions in order, and the lines that were skipped (with why)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)


def _attr_value(v: Any, where: str) -> ArgValue:
    if v is None or isinstance(v, (bool, str)):
        if isinstance(v, str) and len(v) > MAX_STR:
            raise ValueError(f"{where}: string of {len(v)} characters exceeds {MAX_STR}")
        return v
    if isinstance(v, int):
        if not _I64[0] <= v <= _I64[1]:
            raise ValueError(f"{where}: integer {v} does not fit 64 bits")
        return v
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        if all(isinstance(x, int) and not isinstance(x, bool) and _I64[0] <= x <= _I64[1] for x in v):
            return tuple(v)
        if all(isinstance(x, str) for x in v):
            return tuple(v)
        raise ValueError(f"{where}: a list must hold only integers or only strings")
    raise ValueError(f"{where}: expected an integer, string, boolean, null, number or list, got {type(v).__name__}")


def _record(obj: Any) -> dict[str, Any]:
    """Validate one parsed line; ValueError says what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - KNOWN_FIELDS)
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (known: {', '.join(sorted(KNOWN_FIELDS))}; put anything else in attrs)")
    did = obj.get("id")
    if not isinstance(did, str) or not did:
        raise ValueError("'id' is required: a non-empty string")
    rec: dict[str, Any] = {"id": did}
    for name in _STRING_FIELDS:
        v = obj.get(name, "")
        if not isinstance(v, str):
            raise ValueError(f"{name!r}: expected a string, got {type(v).__name__}")
        if len(v) > MAX_STR:
            raise ValueError(f"{name!r}: string of {len(v)} characters exceeds {MAX_STR}")
        rec[name] = v
    alts = obj.get("alternatives", [])
    if not isinstance(alts, list) or not all(isinstance(a, str) for a in alts):
        raise ValueError("'alternatives': expected a list of strings")
    rec["alternatives"] = tuple(alts)
    attrs = obj.get("attrs", {})
    if not isinstance(attrs, dict):
        raise ValueError(f"'attrs': expected an object, got {type(attrs).__name__}")
    if len(attrs) > MAX_ATTRS:
        raise ValueError(f"'attrs': {len(attrs)} entries exceed {MAX_ATTRS}")
    rec["attrs"] = {k: _attr_value(v, f"'attrs.{k}'") for k, v in attrs.items()}
    return rec


def parse_decision_log(text: str) -> DecisionLog:
    """Every line of a JSONL decision log: valid ones as records, the others as BadLine (1-based numbers)."""
    log = DecisionLog()
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE:
            log.bad.append(BadLine(n, f"line of {len(line)} characters exceeds {MAX_LINE}"))
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:
            log.bad.append(BadLine(n, f"not JSON ({exc})"))
            continue
        try:
            log.records.append(_record(obj))
        except ValueError as exc:
            log.bad.append(BadLine(n, str(exc)))
    return log


def read_decision_log(path: str) -> DecisionLog:
    try:
        with open(path, encoding="utf-8") as f:
            return parse_decision_log(f.read())
    except UnicodeDecodeError as exc:
        raise DecisionLogError(f"--decisions {path}: not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise DecisionLogError(f"--decisions {path}: {exc.strerror or exc}") from exc


def decision_events(records: list[dict[str, Any]], host_id: str, pid: int, mono_ns: int, wall_offset_ns: int,
                    producer_id: int | None = None) -> list[TranspilerDecision]:
    """The records as events of process ``pid`` (its main thread) at ``mono_ns``, source "log"."""
    producer = random.getrandbits(64) if producer_id is None else producer_id
    out = []
    for i, r in enumerate(records):
        h = EventHeader(make_event_id(producer, i + 1), host_id, pid, pid, mono_ns, mono_ns + wall_offset_ns, 0,
                        CausalStamp(i + 1, 0))
        out.append(TranspilerDecision(h, r["id"], r["source_location"], r["target_symbol"], r["kind"], r["chosen"],
                                      r["alternatives"], r["reason"], "log", r["attrs"]))
    return out


def log_events(log: DecisionLog, host_id: str, pid: int, mono_ns: int, wall_offset_ns: int) -> list[Event]:
    """The log's decisions as events of ``pid`` at ``mono_ns``, plus one LostEvents (source ``decision_log``)
    counting the bad lines, if any: what ``sysweave trace --decisions`` and ``sysweave agent --decisions`` add."""
    out: list[Event] = list(decision_events(log.records, host_id, pid, mono_ns, wall_offset_ns))
    if log.bad:
        producer = random.getrandbits(64)
        h = EventHeader(make_event_id(producer, 1 << 62), host_id, pid, pid, mono_ns, mono_ns + wall_offset_ns, 0)
        detail = "; ".join(f"line {b.line}: {b.message}" for b in log.bad[:5])[:1000]
        out.append(LostEvents(h, "decision_log", len(log.bad), detail))
    return out
