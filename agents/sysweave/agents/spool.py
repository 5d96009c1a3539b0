"""A bounded on-disk spool of encoded batches for Kafka outages: FIFO, replayed in order, drop-oldest.

One file per batch, named by a zero-padded sequence number so a directory listing is the replay order.
When adding a batch would exceed ``max_bytes``, the oldest batches are deleted and their events counted
as lost (``dropped_batches``, ``dropped_events``): the loss is reported, never silent. A restarted agent
finds the spool and replays it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["Spool"]


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self.dropped_batches = 0
        self.dropped_events = 0
        self.spooled_batches = 0
        files = self._files()
        self._next = int(files[-1].name.split(".")[0]) + 1 if files else 0
        self._bytes = sum(f.stat().st_size for f in files)

    def _files(self) -> list[Path]:
        return sorted(self.dir.glob("*.batch"))

    def __len__(self) -> int:
        return len(self._files())

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def push(self, key: bytes, value: bytes, events: int) -> None:
        record = len(key).to_bytes(4, "big") + key + events.to_bytes(4, "big") + value
        with self._lock:
            while self._bytes + len(record) > self.max_bytes and self._files():
                self._drop_oldest()
            tmp = self.dir / f"{self._next:016d}.tmp"
            tmp.write_bytes(record)
            os.replace(tmp, self.dir / f"{self._next:016d}.batch")  # atomic: a crash leaves no half batch
            self._next += 1
            self._bytes += len(record)
            self.spooled_batches += 1

    def _drop_oldest(self) -> None:
        oldest = self._files()[0]
        data = oldest.read_bytes()
        klen = int.from_bytes(data[:4], "big")
        self.dropped_events += int.from_bytes(data[4 + klen:8 + klen], "big")
        self.dropped_batches += 1
        self._bytes -= len(data)
        oldest.unlink()

    def peek(self) -> tuple[Path, bytes, bytes, int] | None:
        """The oldest batch (path, key, value, events) without removing it."""
        with self._lock:
            files = self._files()
            if not files:
                return None
            data = files[0].read_bytes()
        klen = int.from_bytes(data[:4], "big")
        return files[0], data[4:4 + klen], data[8 + klen:], int.from_bytes(data[4 + klen:8 + klen], "big")

    def remove(self, path: Path) -> None:
        with self._lock:
            try:
                size = path.stat().st_size
                path.unlink()
                self._bytes -= size
            except FileNotFoundError:
                pass
