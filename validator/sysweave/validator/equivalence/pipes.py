"""What each pipe of a traced tree holds (pure): the exact bytes a ``splice``/``tee`` out of a pipe moved.

``splice``, ``tee`` and ``vmsplice`` move bytes inside the kernel: no payload of theirs shows them. To compare
a connection fed by ``splice(pipe -> socket)`` by its bytes, each pipe's content is modelled as one byte stream:

* what goes in, in the writers' order: a traced write's captured payload, a file range spliced in (the in
  file's offset after the call, as for ``sendfile``), a range of another pipe (``splice``/``tee`` from a
  pipe), a ``vmsplice``'s first iovec — or an :class:`Unknown` run where the bytes cannot be known (a payload
  beyond the capture size, the bcc fallback's missing file position, a socket's bytes);
* what comes out, in the consumers' order: a read or a ``splice`` out takes the next bytes (the FIFO's
  head), a ``tee`` copies them without taking them.

Writers and consumers are ordered only among themselves (a blocked reader's call starts before the write
that wakes it), so what a consumer took is a :class:`Slice` of the stream, resolved when the run's whole
trace is in (:meth:`PipeModel.resolve`). A slice reaching past what the traced tree put in (a writer outside
the tree) resolves to its known prefix and the reason the rest is unknown: a comparison gap, never a guess.

    >>> m = PipeModel()
    >>> m.put(7, b"hello ")
    >>> m.put(7, b"world")
    >>> head = m.take(7, 5, consume=False)        # tee: a copy of the head
    >>> m.take(7, 3)                              # a read takes the head
    Slice(pipe=7, start=0, end=3)
    >>> m.resolve(head, no_files), m.resolve(m.take(7, 8), no_files)
    ((b'hello', None), (b'lo world', None))
    >>> m.resolve(m.take(7, 2), no_files)
    (b'', 'the traced tree put 11 bytes into the pipe, 13 left it (a writer outside the traced tree)')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["FileRange", "FileReader", "Piece", "PipeModel", "Slice", "Unknown", "no_files", "piece_size"]

MAX_DEPTH = 32  # pipes feeding pipes: a longer chain resolves to Unknown (it cannot loop: slices point back)


@dataclass(frozen=True, slots=True)
class Unknown:
    """``n`` bytes whose content cannot be known, and why (for people)."""

    n: int
    why: str


@dataclass(frozen=True, slots=True)
class Slice:
    """Bytes [start, end) of pipe ``pipe``'s stream (positions count every byte ever put in)."""

    pipe: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class FileRange:
    """Bytes [start, end) of ``path`` on ``host``, as the file is at the end of the run (resolved then, by a
    :data:`FileReader` that refuses a file the run changed)."""

    host: str
    path: str
    start: int
    end: int


Piece = bytes | Unknown | Slice | FileRange
# (host, path, start, end) -> the bytes, or the reason they are unknown
FileReader = Callable[[str, str, int, int], "bytes | str"]


def no_files(host: str, path: str, start: int, end: int) -> bytes | str:
    """A :data:`FileReader` that knows no file."""
    return f"{path}: no final state to read"


def piece_size(p: Piece) -> int:
    if isinstance(p, bytes):
        return len(p)
    if isinstance(p, Unknown):
        return p.n
    return p.end - p.start


@dataclass(slots=True)
class _Stream:
    pieces: list[tuple[int, Piece]] = field(default_factory=list)  # (start position, piece), in order
    written: int = 0
    consumed: int = 0


class PipeModel:
    """Every pipe's stream, by pipe id (fdtrack's resource id, shared by both ends)."""

    def __init__(self) -> None:
        self._streams: dict[int, _Stream] = {}

    def _stream(self, pipe: int) -> _Stream:
        s = self._streams.get(pipe)
        if s is None:
            s = self._streams[pipe] = _Stream()
        return s

    def put(self, pipe: int, piece: Piece) -> None:
        """Bytes written into ``pipe`` (after every earlier put)."""
        n = piece_size(piece)
        if n > 0:
            s = self._stream(pipe)
            s.pieces.append((s.written, piece))
            s.written += n

    def take(self, pipe: int, n: int, consume: bool = True) -> Slice:
        """The next ``n`` bytes a consumer of ``pipe`` gets (``consume``: taken from the pipe; False: tee's copy)."""
        s = self._stream(pipe)
        got = Slice(pipe, s.consumed, s.consumed + max(n, 0))
        if consume:
            s.consumed = got.end
        return got

    def resolve(self, piece: Piece, files: FileReader, depth: int = 0) -> tuple[bytes, str | None]:
        """The bytes of ``piece``: (all of them, None), or (the known prefix, why the rest is unknown)."""
        if isinstance(piece, bytes):
            return piece, None
        if isinstance(piece, Unknown):
            return b"", piece.why
        if isinstance(piece, FileRange):
            got = files(piece.host, piece.path, piece.start, piece.end)
            return (got, None) if isinstance(got, bytes) else (b"", got)
        if depth >= MAX_DEPTH:
            return b"", f"a chain of more than {MAX_DEPTH} pipes"
        return self._slice(piece, files, depth)

    def _slice(self, sl: Slice, files: FileReader, depth: int) -> tuple[bytes, str | None]:
        s = self._streams.get(sl.pipe, _Stream())
        out = bytearray()
        for at, p in s.pieces:
            end = at + piece_size(p)
            if end <= sl.start + len(out) or at >= sl.end:
                continue
            lo, hi = sl.start + len(out) - at, min(end, sl.end) - at  # the part of ``p`` wanted, in p's positions
            data, why = self.resolve(_part(p, lo, hi), files, depth + 1)
            out += data
            if why is not None:
                return bytes(out), why
        if sl.start + len(out) < sl.end:
            return bytes(out), (f"the traced tree put {s.written:,} bytes into the pipe, {sl.end:,} left it "
                                f"(a writer outside the traced tree)")
        return bytes(out), None


def _part(p: Piece, lo: int, hi: int) -> Piece:
    """Bytes [lo, hi) of ``p`` (0 <= lo < hi <= piece_size(p))."""
    if isinstance(p, bytes):
        return p[lo:hi]
    if isinstance(p, Unknown):
        return Unknown(hi - lo, p.why)
    if isinstance(p, Slice):
        return Slice(p.pipe, p.start + lo, p.start + hi)
    return FileRange(p.host, p.path, p.start + lo, p.start + hi)
