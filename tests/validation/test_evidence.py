"""No verdict from a guess (issue 17, item 4; issue 15, item 3): a run whose capture lost evidence is run
again, then "could not decide"; an EQUIVALENT that would rest on uncaptured payload or unknown file state is
"could not decide". Pure checks and the harness with a scripted capture (no tracing needed)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import IO

import pytest
from tests.validation.test_effects_stored import job

from sysweave.schemas.events import (
    CausalStamp,
    Event,
    EventHeader,
    LostEvents,
    ProcessEvent,
    ProcessEventType,
    SyscallSpan,
    make_event_id,
)
from sysweave.validator.equivalence.compare import compare
from sysweave.validator.equivalence.evidence import MAX_RERUNS, capture_gaps, comparison_gaps
from sysweave.validator.equivalence.harness import CapturedRun, Harness, Undecided
from sysweave.validator.equivalence.model import Conversation, Obs, StreamObs

_seq = itertools.count(1)


def h(pid: int) -> EventHeader:
    n = next(_seq)
    return EventHeader(make_event_id(7, n), "h", pid, pid, n * 1000, n * 1000, 10, CausalStamp(n, 0))


def proc(kind: ProcessEventType, pid: int, child: int = 0, **kw: object) -> ProcessEvent:
    return ProcessEvent(h(pid), kind, parent_pid=pid if child else 0, child_pid=child, **kw)  # type: ignore[arg-type]


def complete_run() -> list[Event]:
    """A parent (10) that forks 11, which execs sleep and is killed; the parent reaps it and exits."""
    return [proc(ProcessEventType.EXEC, 10, argv=("prog",)), proc(ProcessEventType.FORK, 10, 11),
            proc(ProcessEventType.EXEC, 11, argv=("sleep", "30")),
            SyscallSpan(h(11), 59, "execve", 0, {"path": "/usr/bin/sleep"}),
            proc(ProcessEventType.EXIT, 11), proc(ProcessEventType.WAIT, 10, 11, signal=15),
            proc(ProcessEventType.EXIT, 10, exit_code=0)]


def test_a_complete_capture_has_no_gap() -> None:
    assert capture_gaps(complete_run(), {"ringbuf": 0, "queue": 0}, running=lambda pid: False) == []
    # a full aggregate table loses statistics, not events
    assert capture_gaps(complete_run(), {"aggregate_table_full": 40}) == []


def test_lost_events_are_a_gap_from_counters_or_from_a_stored_trace() -> None:
    gaps = capture_gaps(complete_run(), {"ringbuf": 1200, "ringbuf_injected": 34, "queue": 0})
    assert [g.kind for g in gaps] == ["lost_events"]
    assert gaps[0].detail == "1,234 events lost (ringbuf: 1,200, ringbuf_injected: 34)"
    stored = [*complete_run(), LostEvents(h(10), "ringbuf", 5)]
    assert [g.detail for g in capture_gaps(stored)] == ["5 events lost (ringbuf: 5)"]


def test_an_exec_without_its_record_is_a_gap() -> None:
    evs = [e for e in complete_run() if not (isinstance(e, ProcessEvent) and e.type is ProcessEventType.EXEC
                                               and e.h.pid == 11)]
    assert [g.detail for g in capture_gaps(evs)] == [
        "the exec of pid 11 was not seen (the exec call succeeded, its record is missing)"]


def test_an_exit_not_recorded_is_a_gap_unless_the_process_still_runs() -> None:
    evs = [e for e in complete_run() if not (isinstance(e, ProcessEvent) and e.type is ProcessEventType.EXIT
                                               and e.h.pid == 11)]
    assert [g.kind for g in capture_gaps(evs)] == ["exit_not_recorded"]  # reaped, yet no exit record
    unreaped = [e for e in evs if not (isinstance(e, ProcessEvent) and e.type is ProcessEventType.WAIT)]
    assert capture_gaps(unreaped, {}, running=lambda pid: pid == 11) == []  # left running: no exit yet
    assert [g.detail for g in capture_gaps(unreaped, {}, running=lambda pid: False)] == [
        "the exit of pid 11 was not recorded (gone when the run ended)"]


def test_equivalence_on_uncaptured_payload_or_unknown_files_is_not_claimed() -> None:
    a, b = Obs(exit_code=0), Obs(exit_code=0)
    for o in (a, b):  # the same first 16 KiB of a 20 KiB message; the rest was never captured
        o.conversations["stream 10.0.0.2:7000"] = [Conversation("stream 10.0.0.2:7000", "stream", bytearray(b"x" * 16384),
                                                                total=20000, captured=16384,
                                                                totals={"sent": 20000}, gaps={"sent": 16384})]
    v = compare(a, b)
    assert v.verdict == "equivalent"  # what was compared agrees ...
    assert [g.detail for g in comparison_gaps(a, b, v.evidence)] == [  # ... but not everything was
        "7,232 of 40,000 payload bytes were not captured (the per-call capture size); they cannot be compared"]
    empty = Obs(exit_code=0)
    assert comparison_gaps(empty, empty, compare(empty, empty).evidence) == []
    assert [g.kind for g in comparison_gaps(empty, empty, {"files_unknown": 2})] == ["unknown_file_state"]


class ScriptedCapture:
    """A capture whose first ``lossy`` runs lose events (as a ring-buffer overrun would)."""

    def __init__(self, lossy: int) -> None:
        self.lossy, self.calls = lossy, 0

    def run(self, argv: list[str], cwd: str, timeout_s: float, stdout: IO[bytes], stderr: IO[bytes],
            stdin: IO[bytes] | None = None, env: dict[str, str] | None = None) -> CapturedRun:
        self.calls += 1
        stdout.write(b"hi\n")
        lost = {"ringbuf": 17} if self.calls <= self.lossy else {"ringbuf": 0}
        return CapturedRun(0, 10, complete_run(), lost=lost, backend="scripted")

    def close(self) -> None:
        pass


def test_a_lossy_run_is_repeated_and_the_complete_rerun_stands() -> None:
    capture = ScriptedCapture(lossy=1)
    side = Harness(None, 10, capture).run_side("/bin/true", 1)
    assert capture.calls == 2 and side.reruns == ["17 events lost (ringbuf: 17)"]
    assert side.obs.stdout == b"hi\n" and side.obs.lost_events == 0


def test_a_run_lossy_every_time_is_undecided_with_the_reason() -> None:
    capture = ScriptedCapture(lossy=100)
    with pytest.raises(Undecided) as info:
        Harness(None, 10, capture).run_side("/bin/true", 1)
    assert capture.calls == 1 + MAX_RERUNS  # bounded
    assert "incomplete in all 3 runs" in str(info.value) and "17 events lost (ringbuf: 17)" in str(info.value)
    assert [g.kind for g in info.value.gaps] == ["lost_events"]


def test_a_stored_trace_that_lost_events_gives_no_verdict() -> None:
    from sysweave.validator.equivalence.stored import validate_traces

    good, same = job(b"1203", 31, "/jobs/a"), job(b"1203", 32, "/jobs/b")
    assert validate_traces(good, same)["verdict"] == "equivalent"
    lossy = replace(same, lost=[LostEvents(h(20), "ringbuf", 9)])
    report = validate_traces(good, lossy)
    assert report["verdict"] == "undecided" and report["divergence"] is None
    assert report["explanation"] == "could not decide: the transpiled trace: 9 events lost (ringbuf: 9)"
    differing = replace(job(b"1204", 33, "/jobs/c"), lost=[LostEvents(h(20), "queue", 1)])
    assert validate_traces(good, differing)["verdict"] == "undecided"  # nor DIVERGENT on a lossy trace


def test_stream_gaps_count_as_uncaptured_payload() -> None:
    a, b = Obs(exit_code=0), Obs(exit_code=0)
    for o in (a, b):
        o.streams["stdout"] = StreamObs(b"y" * 64, 100, gap=64)
    assert [g.kind for g in comparison_gaps(a, b, compare(a, b).evidence)] == ["truncated_payload"]


def test_masked_output_is_not_missing_output() -> None:
    a, b = Obs(exit_code=0), Obs(exit_code=0)
    for o in (a, b):  # --runs masked a pid: the masked stream is shorter than what was written, all captured
        o.streams["stdout"] = StreamObs(b"pid \x00?\x00 ok\n", 14)
        o.masked_bytes = 5
    assert comparison_gaps(a, b, compare(a, b).evidence) == []
