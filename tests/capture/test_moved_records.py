"""Decoding what the capture records for bytes moved inside the kernel (splice's in offset, vmsplice's first
iovec) and the bcc fallback's exit signal (syscalls.h: OFFSET_UNKNOWN, EXIT_SIGNAL_DELIVERED)."""

from __future__ import annotations

from sysweave.agents.records import EXIT_SIGNAL_DELIVERED, OFFSET_UNKNOWN, REC_EXIT, REC_SYSCALL
from sysweave.agents.syscall_args import NR_BY_NAME, OBSERVABLE
from sysweave.schemas.events import ProcessEvent, SyscallSpan

from .test_units import decoder, record


def test_splice_carries_the_in_offset_after_the_call() -> None:
    (span,) = list(decoder().decode(record(REC_SYSCALL, NR_BY_NAME["splice"], 5, (6, 0, 5, 0, 5, 0), aux=7)))
    assert isinstance(span, SyscallSpan) and span.args["offset_after"] == 7 and span.args["arg0"] == 6
    (span,) = list(decoder().decode(record(REC_SYSCALL, NR_BY_NAME["splice"], 5, aux=OFFSET_UNKNOWN)))
    assert isinstance(span, SyscallSpan) and "offset_after" not in span.args  # unknown: never a made-up offset


def test_vmsplice_carries_its_first_iovec() -> None:
    (span,) = list(decoder().decode(record(REC_SYSCALL, NR_BY_NAME["vmsplice"], 10, (5, 0, 2, 0, 0, 0),
                                           d2=b"vmsplice!\n", aux=2)))
    assert isinstance(span, SyscallSpan) and span.payload == b"vmsplice!\n" and span.payload_len == 10
    assert span.args["iovcnt"] == 2


def test_moving_calls_are_shipped_every_time_in_validation() -> None:
    assert {"sendfile", "splice", "tee", "vmsplice", "copy_file_range"} <= OBSERVABLE


def test_bcc_exit_signal_unless_exit_group_said_otherwise() -> None:
    d = decoder()
    (ev,) = list(d.decode(record(REC_EXIT, 0, 13, reason=EXIT_SIGNAL_DELIVERED)))
    assert isinstance(ev, ProcessEvent) and (ev.exit_code, ev.signal) == (None, 13)
    list(d.decode(record(REC_SYSCALL, NR_BY_NAME["exit_group"], 0, (3, 0, 0, 0, 0, 0))))
    (ev,) = list(d.decode(record(REC_EXIT, 0, 9, reason=EXIT_SIGNAL_DELIVERED)))  # exit_group's zap: SIGKILL
    assert isinstance(ev, ProcessEvent) and (ev.exit_code, ev.signal) == (3, None)
