"""The function-probe contract: what Python derives from uprobes.h (struct layouts, defines) equals what gcc
makes of the same header, and the record decoder reads gcc's bytes back."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sysweave.agents.bpf import uprobes
from sysweave.agents.bpf.uprobes_spec import parse_record, up_contract

HEADER = Path(uprobes.__file__).resolve().parent / "uprobes.h"
TYPEDEFS = "typedef unsigned int u32; typedef unsigned long long u64;\n"


def _run(tmp_path: Path, program: str) -> str:
    if not shutil.which("gcc"):
        pytest.skip("gcc not installed")
    src, exe = tmp_path / "layout.c", tmp_path / "layout"
    src.write_text(program)
    subprocess.run(["gcc", "-Wall", "-Werror", f"-I{HEADER.parent}", "-o", str(exe), str(src)], check=True)
    return subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout


def test_layouts_and_defines_match_gcc(tmp_path: Path) -> None:
    c = up_contract()
    assert set(c.structs) >= {"up_probe", "up_agg_key", "up_agg_val", "up_frame", "up_rec"}
    body = [TYPEDEFS, '#include <stdio.h>\n#include <stddef.h>\n#include "uprobes.h"\nint main(void) {\n']
    for sname, members in c.structs.items():
        body.append(f'printf("{sname} sizeof %zu\\n", sizeof(struct {sname}));\n')
        for m in members:
            body.append(f'printf("{sname} {m.name} %zu %zu\\n", offsetof(struct {sname}, {m.name}), '
                        f"sizeof(((struct {sname} *)0)->{m.name}));\n")
    for name in c.defines:
        if name != "SYSWEAVE_UPROBES_H":
            body.append(f'printf("#define {name} %lld\\n", (long long)({name}));\n')
    # one record as the kernel writes it, for the decoder
    body.append("struct up_rec r = {0}; r.pid = 41; r.tid = 42; r.probe = 7; r.ts = 1000; r.dur = 2500; r.deref = 9;\n"
                "for (int i = 0; i < UP_ARGS; i++) r.args[i] = 100 + i;\nr.str_len = 7;\n"
                "r.str[0] = 'v'; r.str[1] = 'e'; r.str[2] = 'c'; r.str[3] = 'a'; r.str[4] = 'd'; r.str[5] = 'd';\n"
                "FILE *f = fopen(\"rec.bin\", \"wb\"); fwrite(&r, sizeof r, 1, f); fclose(f);\n")
    body.append("return 0; }\n")
    out = _run(tmp_path, "".join(body).replace('"rec.bin"', f'"{tmp_path}/rec.bin"'))
    gcc: dict[str, dict[str, tuple[int, ...]]] = {}
    defines = {}
    for line in out.splitlines():
        if line.startswith("#define"):
            _, name, value = line.split()
            defines[name] = int(value)
            continue
        sname, member, *nums = line.split()
        gcc.setdefault(sname, {})[member] = tuple(int(n) for n in nums)
    for sname in c.structs:
        layout, size = c.layout(sname)
        assert gcc[sname].pop("sizeof") == (size,), sname
        assert gcc[sname] == layout, sname
    assert defines == {k: v for k, v in c.defines.items() if k != "SYSWEAVE_UPROBES_H"}
    call = parse_record((tmp_path / "rec.bin").read_bytes())
    assert (call.pid, call.tid, call.probe, call.ts, call.dur, call.deref, call.text) == (41, 42, 7, 1000, 2500, 9, "vecadd")
    assert call.args == tuple(100 + i for i in range(c["UP_ARGS"]))
