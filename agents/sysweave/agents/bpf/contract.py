"""The kernel/user-space contract, read from ``syscalls.h`` (its one definition).

The loader (syscalls.py) takes its config slots, modes and flags from here, and the record decoder
(records.py) its record types, reason bits and the layout of ``struct rec``: nothing is copied by hand.
This module is pure (no bcc): it parses the header's ``#define NAME <integer>`` lines and its structs'
members, and lays them out with the C rules for x86-64 (natural alignment), so records can be decoded
anywhere.  tests/capture/test_contract.py checks the layout against gcc's ``offsetof``/``sizeof``.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from functools import cache

from sysweave.schemas.errors import AgentError

__all__ = ["HEADER", "Contract", "ContractError", "Member", "contract", "header_text", "parse_header"]

HEADER = "syscalls.h"
# C type -> (struct format character, size); every type the header uses must be here
_TYPES = {"u8": ("B", 1), "s8": ("b", 1), "char": ("s", 1), "u16": ("H", 2), "s16": ("h", 2), "u32": ("I", 4),
          "s32": ("i", 4), "u64": ("Q", 8), "s64": ("q", 8)}
_DEFINE = re.compile(r"^\s*#define\s+([A-Z_][A-Z0-9_]*)\s+(0x[0-9a-fA-F]+|\d+)\b", re.M)
_STRUCT = re.compile(r"\bstruct\s+(\w+)\s*\{(.*?)\}\s*;", re.S)
_MEMBER = re.compile(r"^(\w+)\s+(\w+)\s*(?:\[([^\]]+)\])?$")


class ContractError(AgentError):
    """syscalls.h says something the parser does not understand (fix the header or the parser)."""


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    ctype: str
    count: str | None  # array length expression (an integer, a define, a cflag parameter, or a sum)

    @property
    def code(self) -> str:
        return _TYPES[self.ctype][0]

    @property
    def elem_size(self) -> int:
        return _TYPES[self.ctype][1]


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)


@dataclass(frozen=True, slots=True)
class Contract:
    defines: dict[str, int]
    structs: dict[str, tuple[Member, ...]]

    def __getitem__(self, name: str) -> int:
        try:
            return self.defines[name]
        except KeyError:
            raise ContractError(f"{HEADER} defines no {name}") from None

    def count(self, member: Member, params: dict[str, int] | None = None) -> int:
        """An array member's length; ``params`` supplies cflag parameters (PATH_CAP, ...)."""
        if member.count is None:
            return 1
        env = {**self.defines, **(params or {})}
        total = 0
        for term in member.count.split("+"):
            factor = 1
            for atom in term.split("*"):
                atom = atom.strip()
                if atom.isdigit():
                    factor *= int(atom)
                elif atom in env:
                    factor *= env[atom]
                else:
                    raise ContractError(f"{member.name}[{member.count}]: {atom!r} is neither a define nor a parameter")
            total += factor
        return total

    def layout(self, name: str, params: dict[str, int] | None = None) -> tuple[dict[str, tuple[int, int]], int]:
        """({member: (offset, size)}, sizeof) as a C compiler for x86-64 lays the struct out."""
        offset, align, out = 0, 1, {}
        for m in self.structs[name]:
            a = m.elem_size
            offset = (offset + a - 1) // a * a
            size = m.elem_size * self.count(m, params)
            out[m.name] = (offset, size)
            offset += size
            align = max(align, a)
        return out, (offset + align - 1) // align * align

    def fixed_prefix(self, name: str) -> tuple[struct.Struct, tuple[str, ...]]:
        """The struct's members up to its first parameter-sized array: a little-endian ``struct.Struct`` (with
        C padding) and the unpacked values' names (``args[6]`` unpacks as ``args0``..``args5``)."""
        fmt, names, offset = "<", [], 0
        for m in self.structs[name]:
            try:
                n = self.count(m)
            except ContractError:
                break  # sized by a cflag: the variable part starts here
            pad = (-offset) % m.elem_size
            fmt += f"{pad}x" if pad else ""
            offset += pad
            if m.ctype == "char":
                fmt += f"{n}s"
                names.append(m.name)
            else:
                fmt += m.code * n
                names.extend([m.name] if m.count is None else [f"{m.name}{i}" for i in range(n)])
            offset += m.elem_size * n
        return struct.Struct(fmt), tuple(names)


def parse_header(text: str) -> Contract:
    body = _strip_comments(text)
    defines = {name: int(value, 0) for name, value in _DEFINE.findall(body)}
    structs: dict[str, tuple[Member, ...]] = {}
    for sname, members in _STRUCT.findall(body):
        parsed = []
        for decl in filter(None, (d.strip() for d in members.split(";"))):
            m = _MEMBER.match(" ".join(decl.split()))
            if not m or m.group(1) not in _TYPES:
                raise ContractError(f"struct {sname}: cannot parse member {decl!r}")
            parsed.append(Member(m.group(2), m.group(1), m.group(3).strip() if m.group(3) else None))
        structs[sname] = tuple(parsed)
    return Contract(defines, structs)


def header_text() -> str:
    # a plain open beside this module: importlib.resources costs ~35 ms of start-up
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), HEADER)) as f:
        return f.read()


@cache
def contract() -> Contract:
    """The contract of the installed syscalls.h (parsed once per process)."""
    return parse_header(header_text())
