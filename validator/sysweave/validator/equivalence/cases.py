"""Test cases for ``sysweave validate``: one input both programs get (arguments, stdin, environment, workdir).

A case file is JSON Lines, one case per line (blank lines are skipped)::

    {"name": "small", "args": ["--n", "3"], "stdin": "1 2 3\\n"}
    {"name": "large", "stdin_file": "inputs/large.txt", "env": {"LC_ALL": "C"}, "workdir": "data"}

Keys: ``name`` (required, unique), ``args`` (list of strings appended to both commands), ``stdin`` (text,
UTF-8) or ``stdin_file`` (a path), ``env`` (strings added to the environment), ``workdir`` (each run starts in
a fresh copy of it), ``timeout_s`` (this case's ``--timeout``). Relative ``stdin_file`` and ``workdir`` are
taken from the case file's directory. Every line is checked and every mistake is reported at once, with its
line number (:class:`CaseError`).

    >>> c = case_from_dict({"name": "n", "args": ["1"], "stdin": "x"}, "here")
    >>> c.name, c.args, c.stdin_bytes()
    ('n', ('1',), b'x')
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from sysweave.schemas.errors import ValidatorError

__all__ = ["CASE_KEYS", "Case", "CaseError", "case_from_dict", "load_cases", "parse_env"]

CASE_KEYS = ("name", "args", "stdin", "stdin_file", "env", "workdir", "timeout_s")
MAX_REPORTED = 20  # mistakes listed before "... and N more"


class CaseError(ValidatorError):
    """A case file or a case option is wrong; the message names where and what to do."""


@dataclass(frozen=True)
class Case:
    """One input for both programs. ``stdin`` and ``stdin_file`` exclusive; neither: stdin is /dev/null."""

    name: str = "default"
    args: tuple[str, ...] = ()
    stdin: bytes | None = None
    stdin_file: str | None = None  # absolute once loaded
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None  # absolute once loaded
    timeout_s: float | None = None  # this case's --timeout (seconds; None: the command line's)

    def stdin_bytes(self) -> bytes | None:
        """What the programs read on stdin (None: /dev/null). Raises CaseError if the file cannot be read."""
        if self.stdin is not None:
            return self.stdin
        if self.stdin_file is None:
            return None
        try:
            with open(self.stdin_file, "rb") as f:
                return f.read()
        except OSError as exc:
            raise CaseError(f"case {self.name!r}: stdin file {self.stdin_file}: {exc.strerror or exc}") from exc

    def check(self) -> None:
        """Raise CaseError if a file the case names is missing (before any program runs)."""
        if self.stdin_file is not None and not os.path.isfile(self.stdin_file):
            raise CaseError(f"case {self.name!r}: stdin file {self.stdin_file} does not exist or is not a file")
        if self.workdir is not None and not os.path.isdir(self.workdir):
            raise CaseError(f"case {self.name!r}: workdir {self.workdir} is not a directory")

    def to_dict(self) -> dict[str, Any]:
        """The case as a JSON Lines object (stdin as text, undecodable bytes escaped)."""
        out: dict[str, Any] = {"name": self.name}
        if self.args:
            out["args"] = list(self.args)
        if self.stdin is not None:
            out["stdin"] = self.stdin.decode("utf-8", "surrogateescape")
        if self.stdin_file is not None:
            out["stdin_file"] = self.stdin_file
        if self.env:
            out["env"] = dict(self.env)
        if self.workdir is not None:
            out["workdir"] = self.workdir
        if self.timeout_s is not None:
            out["timeout_s"] = self.timeout_s
        return out


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _problems(obj: dict[str, Any]) -> list[str]:
    out = []
    unknown = sorted(set(obj) - set(CASE_KEYS))
    if unknown:
        out.append(f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(CASE_KEYS)})")
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        out.append('"name" must be a non-empty string')
    if "args" in obj and not _str_list(obj["args"]):
        out.append('"args" must be a list of strings, e.g. ["--n", "3"]')
    if "stdin" in obj and "stdin_file" in obj:
        out.append('give "stdin" or "stdin_file", not both')
    for key in ("stdin", "stdin_file", "workdir"):
        if key in obj and not isinstance(obj[key], str):
            out.append(f'"{key}" must be a string')
    t = obj.get("timeout_s", 1)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
        out.append('"timeout_s" must be a number of seconds > 0')
    env = obj.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        out.append('"env" must be an object of strings, e.g. {"LC_ALL": "C"}')
    elif any(not k or "=" in k for k in env):
        out.append('"env" names must be non-empty and contain no "="')
    return out


def case_from_dict(obj: Any, base_dir: str, where: str = "case") -> Case:
    """One case from its JSON object; relative paths are taken from ``base_dir``. Raises CaseError."""
    if not isinstance(obj, dict):
        raise CaseError(f"{where}: a case is a JSON object, got {type(obj).__name__}")
    problems = _problems(obj)
    if problems:
        raise CaseError(f"{where}: " + "; ".join(problems))

    def path(key: str) -> str | None:
        v = obj.get(key)
        return None if v is None else os.path.abspath(os.path.join(base_dir, os.path.expanduser(v)))

    stdin = obj.get("stdin")
    case = Case(obj["name"], tuple(obj.get("args", [])), None if stdin is None else stdin.encode("utf-8"),
                path("stdin_file"), dict(obj.get("env", {})), path("workdir"),
                None if obj.get("timeout_s") is None else float(obj["timeout_s"]))
    try:
        case.check()
    except CaseError as exc:
        raise CaseError(f"{where}: {exc}") from None
    return case


def load_cases(path: str) -> list[Case]:
    """Every case of a JSON Lines file, in order; every mistake in the file reported at once (CaseError)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseError(f"case file {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    base = os.path.dirname(os.path.abspath(path))
    cases: list[Case] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{where}: not JSON ({exc.msg} at column {exc.colno}); one case object per line")
            continue
        try:
            case = case_from_dict(obj, base, where)
        except CaseError as exc:
            errors.append(str(exc))
            continue
        if case.name in seen:
            errors.append(f"{where}: case name {case.name!r} already used on line {seen[case.name]}")
            continue
        seen[case.name] = n
        cases.append(case)
    if not errors and not cases:
        errors.append(f"case file {path}: no cases (one JSON object per line, each with a \"name\")")
    if errors:
        more = f"\n... and {len(errors) - MAX_REPORTED} more" if len(errors) > MAX_REPORTED else ""
        raise CaseError("\n".join(errors[:MAX_REPORTED]) + more)
    return cases


def parse_env(items: list[str]) -> dict[str, str]:
    """``--env KEY=VALUE`` options as a dict. Raises CaseError naming the bad item."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CaseError(f"--env {item!r}: give KEY=VALUE")
        out[key] = value
    return out
