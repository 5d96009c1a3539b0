"""Bytes moved inside the kernel, in the extraction (pure): ``sendfile``/``splice``/``tee``/``vmsplice``.

No payload of these calls shows their bytes; :mod:`.pipes` models each pipe's content so that a connection
fed by ``splice(file -> pipe -> socket)`` or ``sendfile(file -> socket)`` is compared by the exact bytes it
got. What a call moved is a :data:`~.pipes.Piece` (:func:`source_piece`); a connection that receives one
records a :class:`~.extraction.Pending` fill, settled once the whole trace is in (:func:`settle_moved`): the file ranges
are read from the files' final state then (and refused for a file the run changed) and the pipe slices
from every write into the pipe, also those that started after the consumer's call.

Bytes that cannot be known (a writer outside the traced tree, a payload beyond the capture size, the bcc
fallback without a file position, a file the run changed) stay a gap of the conversation
(``Conversation.unknown``): :func:`~.evidence.comparison_gaps` makes an EQUIVALENT "could not decide".
"""

from __future__ import annotations

from sysweave.schemas.events import SyscallSpan
from sysweave.streams.pipeline.fdresources import Access, Resource, ResourceKind
from sysweave.validator.equivalence.extraction import Extraction
from sysweave.validator.equivalence.filestate import from_event
from sysweave.validator.equivalence.pipes import FileRange, Piece, Unknown

__all__ = ["MOVERS", "file_bytes", "pipe_io", "settle_moved", "source_piece", "vmsplice"]

MOVERS = frozenset({"splice", "tee", "vmsplice", "sendfile"})  # calls that can move bytes into or out of a pipe


def source_piece(ex: Extraction, e: SyscallSpan, acc: Access) -> Piece:
    """What a sendfile/splice/tee moved, from its source (``acc.source``): a range of the in file (the
    capture's ``offset_after``), the pipe's next bytes, or :class:`~.pipes.Unknown` with the reason."""
    src, n = acc.source, acc.nbytes
    if src is None:
        return Unknown(n, f"{e.name} from fd {acc.fd2}, opened outside the traced tree")
    if src.kind is ResourceKind.FILE:
        end = e.args.get("offset_after")
        if not isinstance(end, int):
            return Unknown(n, f"{e.name} from {src.path}: the file's offset was not captured (the bcc fallback "
                              f"cannot read a file's own position; the CO-RE capture can, on a kernel with BTF: "
                              f"make bpf)")
        return FileRange(e.h.host_id, src.path, end - n, end)
    if src.kind is ResourceKind.PIPE:
        return ex.pipes.take(src.id, n, consume=acc.consumed)
    if src.kind is ResourceKind.STDIO:
        end = e.args.get("offset_after")  # the inherited stdin: the harness's file, at its position after the call
        data = ex.stdin_range(end - n, end) if src.stdio == 0 and isinstance(end, int) and ex.stdin_range else None
        if data is not None:
            return data
        return Unknown(n, f"{e.name} from the inherited fd {src.stdio}: its content comes from outside the "
                          f"traced tree")
    return Unknown(n, f"{e.name} from a {src.kind.value}: bytes received are not captured")


def pipe_io(ex: Extraction, e: SyscallSpan, res: Resource, write: bool, nbytes: int,
            piece: Piece | None = None) -> None:
    """A read or write of ``nbytes`` on a pipe: a write puts its bytes (``piece``, else the call's payload,
    captured up to the capture size), a read takes the pipe's head."""
    if not write:
        ex.pipes.take(res.id, nbytes)
        return
    if piece is None:
        payload = (e.payload or b"")[:nbytes]
        ex.pipes.put(res.id, payload)
        if len(payload) < nbytes:
            piece = Unknown(nbytes - len(payload), f"a {e.name} into a pipe beyond the captured "
                                                   f"{len(payload):,} bytes (the per-call capture size)")
    if piece is not None:
        ex.pipes.put(res.id, piece)


def vmsplice(ex: Extraction, e: SyscallSpan, acc: Access) -> None:
    """vmsplice(fd, iov, n): user memory into a pipe (its write end; the capture keeps the first iovec, as
    for writev), or the pipe's head into user memory (its read end)."""
    fd = e.args.get("fd", e.args.get("arg0"))
    res = ex.tracker.resource(e.h.host_id, e.h.pid, fd) if isinstance(fd, int) else None
    if e.ret > 0 and res is not None and res.kind is ResourceKind.PIPE and ex.model_pipes:
        pipe_io(ex, e, res, res.end == 1, e.ret)


def file_bytes(ex: Extraction, host: str, path: str, start: int, end: int) -> bytes | str:
    """Bytes [start, end) of ``path`` as the run left it, or why they are unknown."""
    if (host, path) in ex.scope:
        return f"{path}: the run changed the file it moved bytes from"
    state = ex.states.get((host, path))
    fe = from_event(state) if state is not None else ex.final_state(path) if ex.final_state is not None else None
    content = fe.content if fe is not None else None
    if content is not None and start >= 0 and end <= len(content):
        return content[start:end]
    if ex.read_range is not None and 0 <= start <= end and end - start <= ex.read_left:
        data = ex.read_range(path, start, end)  # past the content kept: the file, unchanged, is still there
        if data is not None:
            ex.read_left -= len(data)
            return data
    if content is None:
        return f"{path}: its content is not known"
    return f"{path}: bytes [{start:,}, {end:,}) lie beyond the {len(content):,} bytes kept"


def settle_moved(ex: Extraction) -> None:
    """Fill every pending conversation range now that the trace is whole (after :func:`~.settle.finish`,
    which completes ``ex.scope``); bytes that stay unknown become the conversation's gap."""
    for p in ex.pending:
        data, why = ex.pipes.resolve(p.piece, lambda h, path, a, b: file_bytes(ex, h, path, a, b))
        c = p.conv
        c.captured += len(data)
        if c.kind == "datagram":
            c.messages[p.at] = (p.direction, data)
        else:
            buf = c.sent if p.direction == "sent" else c.received
            buf[p.at:p.at + len(data)] = data
            if why is not None:
                c.gaps[p.direction] = min(c.gaps.get(p.direction, p.at + len(data)), p.at + len(data))
        if why is not None:
            c.unknown[why] = c.unknown.get(why, 0) + p.n - len(data)
