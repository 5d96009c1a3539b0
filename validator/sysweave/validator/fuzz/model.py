"""The fuzzer's data (pure): one input to both programs, one side's observable outcome, how two outcomes differ.

An input is what a case gives both programs: stdin, extra arguments and the contents of the workdir files the
fuzzer may change. An outcome is what the untraced comparison sees: the exit status, stdout, stderr and the
workdir's final tree (each entry as :func:`sysweave.schemas.filestate.read_file_state` reads it).

    >>> a = Outcome(0, b"3\\n", b"", {"./out": ("file", 0o644, 2, "d1", "")})
    >>> b = Outcome(0, b"-1\\n", b"", {"./out": ("file", 0o644, 2, "d1", "")})
    >>> d = first_divergence(a, b)
    >>> (d.channel, d.explanation)
    ('stdout', "stdout differs at byte 0: b'3\\\\n' vs b'-1\\\\n'")
    >>> first_divergence(a, a) is None
    True
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace

from sysweave.validator.equivalence.excerpt import line_start, show_bytes

__all__ = ["CHANNELS", "Divergence", "FuzzInput", "Outcome", "TreeEntry", "first_divergence"]

CHANNELS = ("exit", "stdout", "stderr", "files")  # compared in this order; the first that differs is reported

# a tree entry: (type, mode, size, content digest, symlink target); None for an absent path
TreeEntry = tuple[str, int | None, int | None, str | None, str]


@dataclass(frozen=True)
class FuzzInput:
    """One input to both programs. ``stdin`` None: no stdin given (the programs read /dev/null).
    ``files``: (workdir-relative path, content) of the workdir files this input overrides, sorted by path."""

    stdin: bytes | None = None
    args: tuple[str, ...] = ()
    files: tuple[tuple[str, bytes], ...] = ()
    name: str = field(default="", compare=False)

    def with_file(self, path: str, content: bytes) -> FuzzInput:
        rest = tuple((p, c) for p, c in self.files if p != path)
        return replace(self, files=tuple(sorted(rest + ((path, content),))))

    def size(self) -> int:
        """Bytes in all parts (what shrinking makes smaller)."""
        return (len(self.stdin or b"") + sum(len(a.encode("utf-8", "surrogateescape")) for a in self.args)
                + sum(len(c) for _, c in self.files))

    def to_json(self) -> str:
        def b64(x: bytes) -> str:
            return base64.b64encode(x).decode()
        return json.dumps({"name": self.name, "args": list(self.args),
                           "stdin_b64": None if self.stdin is None else b64(self.stdin),
                           "files_b64": {p: b64(c) for p, c in self.files}}, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> FuzzInput:
        """Raises ValueError (with what is wrong) for anything that is not a saved input."""
        try:
            d = json.loads(text)
            stdin = None if d.get("stdin_b64") is None else base64.b64decode(d["stdin_b64"], validate=True)
            files = tuple(sorted((str(p), base64.b64decode(c, validate=True)) for p, c in d.get("files_b64", {}).items()))
            args = tuple(str(a) for a in d.get("args", []))
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise ValueError(f"not a saved fuzz input: {exc}") from exc
        return FuzzInput(stdin, args, files, str(d.get("name", "")))

    def describe(self, limit: int = 200) -> str:
        parts = []
        if self.stdin is not None:
            parts.append(f"stdin {show_bytes(self.stdin, limit)} ({len(self.stdin)} bytes)")
        if self.args:
            parts.append("args " + " ".join(repr(a) for a in self.args))
        for path, content in self.files:
            parts.append(f"file {path} = {show_bytes(content, limit)} ({len(content)} bytes)")
        return "; ".join(parts) or "no input"


@dataclass(frozen=True)
class Outcome:
    """One side's observable result. ``exit``: the exit code, -N for death by signal N, None if it timed out."""

    exit: int | None
    stdout: bytes
    stderr: bytes
    tree: dict[str, TreeEntry | None]
    wall_s: float = field(default=0.0, compare=False)

    def signature(self) -> tuple[object, ...]:
        """A coarse behaviour class (exit, output length class, first stderr line, tree shape): new ones are
        what the scheduler keeps as interesting."""
        err = self.stderr.splitlines()[-1:] if self.stderr else []
        return (self.exit, len(self.stdout).bit_length(), self.stdout.count(b"\n").bit_length(),
                tuple(err), tuple(sorted((p, e[0] if e else None) for p, e in self.tree.items())))


@dataclass(frozen=True)
class Divergence:
    channel: str  # one of CHANNELS
    explanation: str


def _first_byte_difference(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _bytes_divergence(channel: str, a: bytes, b: bytes) -> Divergence:
    i = _first_byte_difference(a, b)
    start = line_start(a, i, back=60)
    return Divergence(channel, f"{channel} differs at byte {i}: {show_bytes(a[start:i + 60], 120)} vs "
                               f"{show_bytes(b[start:i + 60], 120)}")


def _exit_text(code: int | None) -> str:
    if code is None:
        return "timed out"
    return f"killed by signal {-code}" if code < 0 else f"exit {code}"


def first_divergence(a: Outcome, b: Outcome, ignore: frozenset[str] = frozenset()) -> Divergence | None:
    """The first channel (CHANNELS order) in which original ``a`` and transpiled ``b`` differ, or None.
    ``ignore``: channels, or ``file:./path`` entries, that differ between runs of one side (not compared)."""
    if "exit" not in ignore and a.exit != b.exit:
        return Divergence("exit", f"exit status differs: {_exit_text(a.exit)} vs {_exit_text(b.exit)}")
    for channel, x, y in (("stdout", a.stdout, b.stdout), ("stderr", a.stderr, b.stderr)):
        if channel not in ignore and x != y:
            return _bytes_divergence(channel, x, y)
    if "files" in ignore:
        return None
    for path in sorted(set(a.tree) | set(b.tree)):
        if f"file:{path}" in ignore:
            continue
        ea, eb = a.tree.get(path), b.tree.get(path)
        if ea != eb:
            return Divergence("files", f"{path}: {_entry_text(ea)} vs {_entry_text(eb)}")
    return None


def _entry_text(e: TreeEntry | None) -> str:
    if e is None:
        return "absent"
    kind, mode, size, digest, target = e
    if kind == "symlink":
        return f"symlink -> {target}"
    return f"{kind} mode {mode or 0:04o}" + (f", {size} bytes, digest {(digest or '?')[:12]}" if kind == "file" else "")
