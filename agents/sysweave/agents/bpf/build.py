"""Build the CO-RE objects (``python -m sysweave.agents.bpf.build``; infra/build-bpf.sh runs it at setup).

Each program NAME.bpf.c beside this module is compiled with ``clang -target bpf -DSYSWEAVE_CORE`` against
``vmlinux.h`` (``bpftool btf dump file /sys/kernel/btf/vmlinux format c``: the build host's kernel types;
CO-RE relocates the fields the programs read to the running kernel's at load) into NAME.bpf.o beside it,
debug info stripped (the BTF the relocations need stays).  Run on the build host only: nodes load the
objects and need no compiler.  The parameters each object is built with come from its loader (CORE_PARAMS),
so they are written once.

Why per build, not per node: CO-RE objects are portable across kernels with BTF (5.8+ for the ring buffer
and task storage), so one build at setup or wheel time serves every node; vmlinux.h only has to declare the
types and fields used, which every kernel since has.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

from sysweave.agents.bpf.capture_setup import CORE_PARAMS, bpf_dir
from sysweave.agents.bpf.libbpf_object import VMLINUX_BTF, object_path
from sysweave.agents.bpf.uprobes_load import CORE_PARAMS as UPROBE_PARAMS
from sysweave.schemas.errors import AgentError

__all__ = ["BuildError", "build_all", "build_object", "core_text", "main"]

PROGRAMS = {"syscalls": CORE_PARAMS, "uprobes": UPROBE_PARAMS}


class BuildError(AgentError):
    """A tool is missing or a compile failed (the message names the command to fix it)."""


def _tool(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise BuildError(f"none of {', '.join(names)} on PATH (apt-get install clang-14 llvm-14 bpftool libbpf-dev)")


# bcc's map calls (its rewriter turns them into helper calls) -> libbpf's: (helper, extra trailing arguments)
_MAP_CALLS = {"lookup": ("bpf_map_lookup_elem", ""), "update": ("bpf_map_update_elem", ", BPF_ANY"),
              "insert": ("bpf_map_update_elem", ", BPF_NOEXIST"), "delete": ("bpf_map_delete_elem", ""),
              "task_storage_get": ("bpf_task_storage_get", ""), "ringbuf_output": ("bpf_ringbuf_output", "")}
_MAP_CALL = re.compile(r"\b(\w+)\.(" + "|".join(_MAP_CALLS) + r")\(")


def core_text(source: str) -> str:
    """The program as libbpf's toolchain spells it: ``m.lookup(k)`` -> ``bpf_map_lookup_elem(&m, k)``, etc."""
    out, pos = [], 0
    for m in _MAP_CALL.finditer(source):
        if m.start() < pos:
            continue
        depth, end = 1, m.end()
        while depth:  # the call's closing parenthesis
            if end >= len(source):
                raise BuildError(f"unbalanced call at {source[m.start():m.start() + 60]!r}")
            depth += {"(": 1, ")": -1}.get(source[end], 0)
            end += 1
        helper, extra = _MAP_CALLS[m.group(2)]
        args = core_text(source[m.end():end - 1])
        out += [source[pos:m.start()], f"{helper}(&{m.group(1)}, {args}{extra})"]
        pos = end
    return "".join(out) + source[pos:]


def vmlinux_header(out_dir: str, btf: str = VMLINUX_BTF) -> str:
    """vmlinux.h for ``btf`` in ``out_dir`` (the kernel's types as C)."""
    if not os.path.exists(btf):
        raise BuildError(f"{btf} is missing: building CO-RE objects needs a kernel with BTF (or --btf FILE)")
    path = os.path.join(out_dir, "vmlinux.h")
    with open(path, "w") as f:
        subprocess.run([_tool("bpftool"), "btf", "dump", "file", btf, "format", "c"], stdout=f, check=True)
    return path


def build_object(name: str, params: dict[str, int], include_dir: str) -> str:
    """Compile NAME.bpf.c into NAME.bpf.o beside it; returns the object's path."""
    if not os.path.exists("/usr/include/bpf/bpf_helpers.h"):
        raise BuildError("libbpf's headers are missing (apt-get install libbpf-dev)")
    out = object_path(name)
    tmp = out + ".tmp"
    with open(os.path.join(bpf_dir(), f"{name}.bpf.c")) as f:
        text = core_text(f.read())
    src = os.path.join(include_dir, f"{name}.bpf.c")  # the includes resolve from bpf_dir() (-I)
    with open(src, "w") as f:
        f.write(text)
    cmd = [_tool("clang-14", "clang"), "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86", "-DSYSWEAVE_CORE",
           "-Werror=implicit-function-declaration",  # an undefined macro would become an extern call
           *(f"-D{k}={v}" for k, v in params.items()), f"-I{include_dir}", f"-I{bpf_dir()}",
           "-idirafter", "/usr/include/x86_64-linux-gnu", "-c", src, "-o", tmp]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"{' '.join(cmd)}\n{done.stderr}")
    subprocess.run([_tool("llvm-strip-14", "llvm-strip"), "-g", tmp], check=True)  # DWARF only: .BTF stays
    os.replace(tmp, out)
    return out


def build_all(btf: str = VMLINUX_BTF) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="sysweave-bpf-") as tmp:
        vmlinux_header(tmp, btf)
        return [build_object(name, params, tmp) for name, params in PROGRAMS.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sysweave.agents.bpf.build", description=__doc__.split("\n")[0])
    parser.add_argument("--btf", default=VMLINUX_BTF, help="kernel BTF to build against (default: this kernel's)")
    args = parser.parse_args(argv)
    try:
        for path in build_all(args.btf):
            print(f"built {path} ({os.path.getsize(path):,} bytes)")
    except (BuildError, subprocess.CalledProcessError) as exc:
        print(f"sysweave: building the BPF objects failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
