"""Function symbols of ELF files and shared-library names, read without bcc (the libbpf path imports no bcc).

* :func:`function_symbols` -- every defined function symbol (``STT_FUNC``/``STT_GNU_IFUNC``) of ``.symtab``
  and ``.dynsym``, as (name, virtual address), as bcc's symbol walk gives them.
* :func:`file_offset` -- a virtual address as the file offset a uprobe attaches at (through the ``PT_LOAD``
  segment that maps it), which is what libbpf's ``bpf_program__attach_uprobe_opts`` takes.
* :func:`usdt_probes` -- the USDT probes (``.note.stapsdt``, sys/sdt.h) a file declares, as (provider, name).
* :func:`find_library` -- ``m``/``libm``/``c`` as the dynamic linker's cache resolves them (``ldconfig -p``),
  as bcc's ``BPF.find_library`` does.

Only 64-bit little-endian ELF (x86-64, the architecture the programs are built for); anything else is an
:class:`ElfError` naming the file. Separate debug files (/usr/lib/debug) are not read: a stripped binary's
static functions cannot be probed by name (its exported ones can, from ``.dynsym``).
"""

from __future__ import annotations

import mmap
import os
import struct
import subprocess
from functools import lru_cache

from sysweave.schemas.errors import AgentError

__all__ = ["ElfError", "file_offset", "find_library", "function_symbols", "usdt_probes", "usdt_sites"]

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_PHDR = struct.Struct("<IIQQQQQQ")
_SYM = struct.Struct("<IBBHQQ")
_SHT_SYMTAB, _SHT_DYNSYM, _SHT_NOTE, _PT_LOAD = 2, 11, 7, 1
_NT_STAPSDT = 3
_STT_FUNC, _STT_GNU_IFUNC = 2, 10
_LDCONFIG = ("/sbin/ldconfig", "/usr/sbin/ldconfig")


class ElfError(AgentError):
    """A file that is not a readable 64-bit little-endian ELF object (the message names it)."""


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                raise ElfError(f"{path}: empty file, not an ELF object")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                data = m[:]
    except OSError as exc:
        raise ElfError(f"{path}: {exc.strerror}") from exc
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ElfError(f"{path}: not a 64-bit little-endian ELF object")
    return data


def _sections(data: bytes, path: str) -> list[tuple[int, ...]]:
    eh = _EHDR.unpack_from(data)
    shoff, shentsize, shnum = eh[6], eh[11], eh[12]
    if shoff + shnum * shentsize > len(data):
        raise ElfError(f"{path}: truncated section table")
    return [_SHDR.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]


@lru_cache(maxsize=32)
def _symbols(path: str, mtime_ns: int) -> tuple[tuple[str, int], ...]:
    data = _read(path)
    sections = _sections(data, path)
    out: list[tuple[str, int]] = []
    seen: set[tuple[str, int]] = set()
    for sh in sections:
        if sh[1] not in (_SHT_SYMTAB, _SHT_DYNSYM) or sh[6] >= len(sections):
            continue
        strtab = sections[sh[6]]
        s_off, s_end = strtab[4], strtab[4] + strtab[5]
        entsize = sh[9] or _SYM.size
        for i in range(sh[5] // entsize):
            st_name, info, _other, shndx, value, _size = _SYM.unpack_from(data, sh[4] + i * entsize)
            if (info & 0xF) not in (_STT_FUNC, _STT_GNU_IFUNC) or shndx == 0 or value == 0:
                continue
            at = s_off + st_name
            end = data.find(b"\0", at, s_end)
            name = data[at:end if end >= 0 else s_end].decode("utf-8", "replace")
            if name and (name, value) not in seen:
                seen.add((name, value))
                out.append((name, value))
    return tuple(out)


def function_symbols(path: str) -> list[tuple[str, int]]:
    """(name, virtual address) of every defined function in ``path``'s symbol tables (aliases included)."""
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError as exc:
        raise ElfError(f"{path}: {exc.strerror}") from exc
    return list(_symbols(os.path.realpath(path), mtime))


def _stapsdt_notes(data: bytes, path: str) -> list[tuple[str, str, int, int, int]]:
    """(provider, name, pc, base, semaphore) of every ``NT_STAPSDT`` note (addresses as the note has them)."""
    out = []
    for sh in _sections(data, path):
        if sh[1] != _SHT_NOTE:
            continue
        at, end = sh[4], sh[4] + sh[5]
        while at + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", data, at)
            name_at = at + 12
            desc_at = name_at + (namesz + 3) // 4 * 4
            if ntype == _NT_STAPSDT and data[name_at:name_at + namesz] == b"stapsdt\0" and descsz > 24:
                pc, base, sem = struct.unpack_from("<QQQ", data, desc_at)
                fields = data[desc_at + 24:desc_at + descsz].split(b"\0")
                if len(fields) >= 2:
                    out.append((fields[0].decode("utf-8", "replace"), fields[1].decode("utf-8", "replace"), pc,
                                base, sem))
            at = desc_at + (descsz + 3) // 4 * 4
    return out


def usdt_probes(path: str) -> list[tuple[str, str]]:
    """(provider, name) of every USDT probe ``path`` declares, once each (a probe may have many sites)."""
    return list(dict.fromkeys((p, n) for p, n, *_ in _stapsdt_notes(_read(path), path)))


def usdt_sites(path: str, provider: str, name: str) -> list[tuple[int, int]]:
    """(file offset of the site, file offset of its semaphore or 0) for every site of USDT probe provider:name.

    A note's addresses are link-time ones; where the file was moved since (prelink), ``.stapsdt.base``'s
    address minus the note's base says by how much (sys/sdt.h's convention)."""
    data = _read(path)
    base = _section_addr(data, path, b".stapsdt.base")
    out = []
    for p, n, pc, note_base, sem in _stapsdt_notes(data, path):
        if (p, n) == (provider, name):
            if base and note_base:
                pc += base - note_base
            out.append((_offset_in(data, path, pc), _offset_in(data, path, sem) if sem else 0))
    return out


def _section_addr(data: bytes, path: str, wanted: bytes) -> int:
    sections = _sections(data, path)
    shstrndx = _EHDR.unpack_from(data)[13]
    if shstrndx >= len(sections):
        return 0
    names_at = sections[shstrndx][4]
    for sh in sections:
        at = names_at + sh[0]
        if data[at:at + len(wanted) + 1] == wanted + b"\0":
            return int(sh[3])
    return 0


def file_offset(path: str, vaddr: int) -> int:
    """The file offset of virtual address ``vaddr`` of ``path`` (the PT_LOAD segment that maps it)."""
    return _offset_in(_read(path), path, vaddr)


def _offset_in(data: bytes, path: str, vaddr: int) -> int:
    eh = _EHDR.unpack_from(data)
    phoff, phentsize, phnum = eh[5], eh[9], eh[10]
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz, _memsz, _align = _PHDR.unpack_from(data, phoff + i * phentsize)
        if p_type == _PT_LOAD and p_vaddr <= vaddr < p_vaddr + p_filesz:
            return int(vaddr - p_vaddr + p_offset)
    raise ElfError(f"{path}: address {vaddr:#x} is in no loaded segment")


@lru_cache(maxsize=1)
def _ld_cache() -> tuple[tuple[str, str, bool], ...]:
    """(soname, path, is x86-64) of every entry of the linker cache, in its order."""
    for tool in _LDCONFIG:
        if os.path.exists(tool):
            try:
                text = subprocess.run([tool, "-p"], capture_output=True, text=True, timeout=10).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            out = []
            for line in text.splitlines()[1:]:
                name, _, rest = line.strip().partition(" (")
                flags, _, path = rest.partition(") => ")
                if name and path:
                    out.append((name, path, "x86-64" in flags))
            return tuple(out)
    return ()


def find_library(name: str) -> str | None:
    """The path of ``lib{name}.so*`` from the linker cache (64-bit first), or None."""
    prefix = f"lib{name}.so"
    found = [(not x64, path) for soname, path, x64 in _ld_cache() if soname.startswith(prefix)]
    return min(found)[1] if found else None
