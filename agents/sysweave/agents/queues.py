"""A bounded queue with counted drops, between a fast producer (the ring-buffer callback) and a slower
consumer (decoding, output, storage) — as OpenTelemetry's BatchProcessor does: when full, the newest item
is dropped and counted, never blocking the producer."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["DropQueue"]

T = TypeVar("T")


class DropQueue(Generic[T]):
    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("queue capacity must be positive")
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self.dropped = 0
        self.enqueued = 0
        self._closed = False

    def put(self, item: T) -> bool:
        """Enqueue without blocking; return False (and count the drop) when full."""
        with self._cond:
            if len(self._items) >= self.capacity:
                self.dropped += 1
                return False
            self._items.append(item)
            self.enqueued += 1
            self._cond.notify()
            return True

    def get_batch(self, max_items: int, timeout_s: float) -> list[T]:
        """Up to ``max_items``; waits at most ``timeout_s`` for the first. Empty once closed and drained."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout_s)
            n = min(max_items, len(self._items))
            return [self._items.popleft() for _ in range(n)]

    def drain(self, max_items: int = 4096, timeout_s: float = 0.1) -> Iterator[T]:
        """Every item, batch by batch, until the queue is closed and empty (a consumer thread's loop)."""
        while True:
            batch = self.get_batch(max_items, timeout_s)
            if not batch:
                if self._closed:
                    return
                continue
            yield from batch

    def close(self) -> None:
        """Wake waiting consumers (shutdown interrupts waits)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)
