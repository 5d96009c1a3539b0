"""The BPF record contract: what Python derives from syscalls.h equals what a C compiler makes of it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sysweave.agents import records
from sysweave.agents.bpf import syscalls, syscalls_maps
from sysweave.agents.bpf.contract import ContractError, contract, parse_header

HEADER = Path(syscalls.bpf_dir()) / "syscalls.h"
# Sizes as the loader passes them (and odd ones: padding bugs show with sizes that are not multiples of 8)
PARAM_SETS = [
    {"PATH_CAP": 256, "PAYLOAD_CAP": 4096, "ARG_CAP": 256},
    {"PATH_CAP": 61, "PAYLOAD_CAP": 64, "ARG_CAP": 3},
]
TYPEDEFS = ("typedef unsigned char u8; typedef signed char s8; typedef unsigned short u16; typedef short s16;\n"
            "typedef unsigned int u32; typedef int s32; typedef unsigned long long u64; typedef long long s64;\n")


def _compile_and_run(tmp_path: Path, program: str, params: dict[str, int]) -> str:
    if not shutil.which("gcc"):
        pytest.skip("gcc not installed")
    src, exe = tmp_path / "layout.c", tmp_path / "layout"
    src.write_text(program)
    defs = [f"-D{k}={v}" for k, v in params.items()]
    subprocess.run(["gcc", "-Wall", "-Werror", *defs, f"-I{HEADER.parent}", "-o", str(exe), str(src)], check=True)
    return subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("params", PARAM_SETS, ids=lambda p: f"PATH_CAP={p['PATH_CAP']}")
def test_every_struct_member_has_gccs_offset_and_size(tmp_path: Path, params: dict[str, int]) -> None:
    c = contract()
    assert set(c.structs) >= {"rec", "agg_key", "agg_val"}
    lines = [TYPEDEFS, "#include <stdio.h>\n#include <stddef.h>\n#include \"syscalls.h\"\nint main(void) {\n"]
    for sname, members in c.structs.items():
        lines.append(f'printf("{sname} sizeof %zu\\n", sizeof(struct {sname}));\n')
        for m in members:
            lines.append(f'printf("{sname} {m.name} %zu %zu\\n", offsetof(struct {sname}, {m.name}), '
                         f"sizeof(((struct {sname} *)0)->{m.name}));\n")
    lines.append("return 0; }\n")
    out = _compile_and_run(tmp_path, "".join(lines), params)
    from_gcc: dict[str, dict[str, tuple[int, ...]]] = {}
    for line in out.splitlines():
        sname, member, *nums = line.split()
        from_gcc.setdefault(sname, {})[member] = tuple(int(n) for n in nums)
    for sname in c.structs:
        layout, size = c.layout(sname, params)
        assert from_gcc[sname].pop("sizeof") == (size,), sname
        assert from_gcc[sname] == layout, sname
    # the decoder's fixed header ends where d1 begins, and d2 follows d1 directly (records.parse_record)
    rec, _ = c.layout("rec", params)
    assert rec["d1"][0] == records.HDR_SIZE and rec["d2"][0] == rec["d1"][0] + params["PATH_CAP"]


def test_every_define_has_gccs_value(tmp_path: Path) -> None:
    """Each integer macro the header defines is parsed, with the value the preprocessor gives it."""
    if not shutil.which("gcc"):
        pytest.skip("gcc not installed")
    macros = subprocess.run(["gcc", "-dM", "-E", "-x", "c", str(HEADER)], capture_output=True, text=True,
                            check=True).stdout
    builtin = subprocess.run(["gcc", "-dM", "-E", "-x", "c", "/dev/null"], capture_output=True, text=True,
                             check=True).stdout
    names = {ln.split()[1] for ln in macros.splitlines()} - {ln.split()[1] for ln in builtin.splitlines()}
    names.discard("SYSWEAVE_SYSCALLS_H")  # the include guard
    c = contract()
    assert names == set(c.defines)
    body = "".join(f'printf("{n} %lld\\n", (long long)({n}));\n' for n in sorted(names))
    program = f'{TYPEDEFS}#include <stdio.h>\n#include "syscalls.h"\nint main(void) {{\n{body}return 0; }}\n'
    out = _compile_and_run(tmp_path, program, PARAM_SETS[0])
    assert {ln.split()[0]: int(ln.split()[1]) for ln in out.splitlines()} == c.defines


def test_python_constants_come_from_the_header() -> None:
    c = contract()
    derived = (records.REC_SYSCALL, records.REC_EXEC, syscalls.CFG_MODE, syscalls.MODE_CGROUP, syscalls.FLAG_FOLLOW,
               syscalls_maps.HIST_BUCKETS)
    names = ("REC_SYSCALL", "REC_EXEC", "CFG_MODE", "MODE_CGROUP", "FLAG_FOLLOW", "HIST_BUCKETS")
    assert dict(zip(names, derived)) == {n: c[n] for n in names}
    assert c.count(c.structs["agg_val"][-1]) == syscalls_maps.HIST_BUCKETS


def test_the_parser_reads_what_it_is_given() -> None:
    c = parse_header("#define A 3\n#define B 0x10 // why\nstruct s { u8 a; u64 b[A]; /* x */ char c[N + B]; };\n")
    assert c.defines == {"A": 3, "B": 16}
    assert c.layout("s", {"N": 5}) == ({"a": (0, 1), "b": (8, 24), "c": (32, 21)}, 56)
    fmt, names = c.fixed_prefix("s")
    assert fmt.format == "<B7xQQQ" and names == ("a", "b0", "b1", "b2")
    with pytest.raises(ContractError, match="cannot parse member"):
        parse_header("struct t { struct other x; };")
    with pytest.raises(ContractError, match="defines no"):
        c["MISSING"]


def test_dump_bpf_prints_the_header_too() -> None:
    text = syscalls.dump_bpf(syscalls.ProbeConfig())
    assert '#include "syscalls.h"' in text and "struct rec {" in text and f"-I{HEADER.parent}" in text
