#!/usr/bin/env bash
# Builds the CO-RE BPF objects (agents/sysweave/agents/bpf/*.bpf.o) that capture loads through libbpf at run
# time. Called by infra/setup.sh after the virtualenv exists; idempotent (rebuilds when a program, a header
# or the build recipe is newer than its object). Build-time only: clang, llvm-strip, bpftool, libbpf's headers.
# Nodes that run the agent need none of them (the objects are portable across kernels with BTF: CO-RE).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
PY=${PY:-$top/.venv/bin/python}
say() { printf 'build-bpf: %s\n' "$*"; }
die() { printf 'build-bpf: ERROR: %s\n' "$*" >&2; exit 1; }
bpf=agents/sysweave/agents/bpf

if [ ! -e /sys/kernel/btf/vmlinux ]; then
  say "no /sys/kernel/btf/vmlinux (kernel without BTF): capture compiles with bcc at run time instead"; exit 0
fi
pkgs=(clang-14 llvm-14 bpftool libbpf-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "installing ${missing[*]} needs root. Run 'sudo make setup' once."
  say "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } \
    || die "apt-get install ${missing[*]} failed (see above)"
fi
stale=0
for src in "$bpf"/syscalls.bpf.c "$bpf"/uprobes.bpf.c; do
  obj=${src%.c}.o
  for dep in "$src" "$bpf"/*.h "$bpf"/build.py "$bpf"/capture_setup.py "$bpf"/uprobes_load.py; do
    [ -f "$obj" ] && [ ! "$dep" -nt "$obj" ] || stale=1
  done
done
if [ "$stale" = 1 ]; then
  "$PY" -m sysweave.agents.bpf.build || die "building the BPF objects failed (see above)"
fi
