"""Retries as data: a :class:`RetryPolicy` (exponential backoff with jitter and an overall deadline) and
:func:`retry`, which runs an operation under it. Used for the ClickHouse server (``server.py``).

Example: ``retry(RetryPolicy(deadline_s=8), connect, (OSError,))`` tries at once, then after about 0.2, 0.4,
0.8 ... s (each within +-20 %), and raises SinkUnavailable once 8 s have passed.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sysweave.validator.store.base import SinkUnavailable

__all__ = ["RetryPolicy", "retry"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter and an overall deadline. Delays (s): 0.2, 0.4, 0.8 ... capped at 5,
    each scaled by a random factor in [1 - jitter, 1 + jitter]."""

    initial_s: float = 0.2
    max_s: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.2
    deadline_s: float = 60.0

    def delays(self) -> Iterator[float]:
        delay = self.initial_s
        while True:
            yield delay * random.uniform(1 - self.jitter, 1 + self.jitter)
            delay = min(delay * self.multiplier, self.max_s)


def retry(policy: RetryPolicy, op: Callable[[], Any], retryable: tuple[type[BaseException], ...],
          stop: threading.Event | None = None, on_retry: Callable[[BaseException], None] | None = None) -> Any:
    """Run ``op`` until it succeeds, a non-retryable error occurs, or the deadline passes (then SinkUnavailable).
    ``stop`` interrupts the waits (shutdown)."""
    deadline = time.monotonic() + policy.deadline_s
    for delay in policy.delays():
        try:
            return op()
        except retryable as exc:
            if on_retry:
                on_retry(exc)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (stop is not None and stop.is_set()):
                raise SinkUnavailable(f"gave up after {policy.deadline_s:.0f} s: {exc}") from exc
            wait = min(delay, remaining)
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)
    raise AssertionError("unreachable")
