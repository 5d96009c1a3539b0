"""How a CLI command stops on SIGINT/SIGTERM/SIGHUP: at once, cleanly, and at once again on a second signal.

While :meth:`Cancellation.installed` is active, the first signal raises ``make_exc(signum)`` in the main
thread (unwinding runs ``finally`` blocks: BPF programs detached, scratch directories removed) — except
inside :meth:`Cancellation.deferred` (a store write), where it is held until the block ends, so the store
never has half a report. A second signal exits at once with 128 + its number. While a traced command runs,
the capture's own handler (:func:`sysweave.agents.session.SignalForwarder`) stops the command's whole tree
and reports the signal instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType

__all__ = ["STOP_SIGNALS", "Cancellation", "held_signals"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Cancellation:
    def __init__(self, make_exc: Callable[[int], BaseException]) -> None:
        self.make_exc = make_exc
        self.received: int | None = None
        self._defer = 0
        self._pending: int | None = None

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is not None:  # the second signal: no more cleaning up
            print(f"sysweave: second {signal.Signals(signum).name}: exiting now", file=sys.stderr)
            os._exit(128 + signum)
        self.received = signum
        if self._defer:
            self._pending = signum
            return
        raise self.make_exc(signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator[Cancellation]:
        old = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """A block a signal must not cut in two; the signal takes effect when it ends."""
        self._defer += 1
        try:
            yield
        finally:
            self._defer -= 1
            if not self._defer and self._pending is not None:
                sig, self._pending = self._pending, None
                raise self.make_exc(sig)

    def note(self, signum: int) -> None:
        """A signal the capture already handled (it stopped the run): a later one is the second."""
        self.received = signum


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP while a store write runs (no half-written trace); one that arrived meanwhile
    is delivered, with its usual effect, when the block ends."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
