#!/usr/bin/env bash
# The GPU device check, for a machine with an NVIDIA GPU and driver, run as root:
#
#   tools/device_check.sh [OUT_DIR]          (OUT_DIR default: $OUT or /tmp/sysweave-gpu-check)
#
# 1. setup (idempotent, seconds when done before): bcc (python3-bpfcc) and kernel headers (or the kernel's
#    own kheaders), tracefs, and the two pure-Python dependencies in .local/gpucheck (msgpack, nvidia-ml-py;
#    cupti-python too when it installs, for the device-side times). Offline machines: run
#    `tools/device_check.sh --prepare` where pip works and carry .local/gpucheck along.
# 2. tools/gpu_check.py: NVML inventory, a real vecadd kernel and copies through the driver API (PTX JIT),
#    CUDA-event timings through the converters, codec and assembly (no eBPF needed).
# 3. the same driver-API workload under `sysweave trace --gpu` (every launch and copy shipped, every syscall
#    shipped, NVML every 50 ms), then tools/gpu_check.py --verify: launch spans with the kernel's name, grid
#    and block; copies with direction and bytes in program order; NVML device and per-process samples with
#    utilisation seen; the driver's ioctl syscalls before the first GPU span and nested inside driver-call
#    spans on their thread; device-side CUPTI kernels when cupti-python is present.
# Prints one line per check; exits non-zero if any failed. A few minutes on a fresh machine.
set -u
cd "$(dirname "$0")/.."
deps=.local/gpucheck
if [ "${1:-}" = "--prepare" ]; then
    python3 -m pip install -q --target "$deps" msgpack nvidia-ml-py && echo "prepared $deps"
    python3 -m pip install -q --target "$deps" cupti-python 2>/dev/null || echo "(cupti-python not installed: device-side CUPTI times will be skipped)"
    exit 0
fi
out=${OUT:-${1:-/tmp/sysweave-gpu-check}}
mkdir -p "$out"
t0=$(date +%s)
echo "host: $(uname -r); $(python3 --version 2>&1); $(nvidia-smi -L 2>&1 | head -n 4)"
[ "$(id -u)" = 0 ] || { echo "FAIL setup: run as root (eBPF needs it)"; exit 1; }

# --- setup: the pure-Python dependencies (the converter check needs only these and the driver) ---------------
PYTHONPATH="$deps" python3 -c 'import msgpack, pynvml' 2>/dev/null \
    || python3 -m pip install -q --target "$deps" msgpack nvidia-ml-py >/dev/null 2>&1 \
    || { echo "FAIL setup: msgpack/nvidia-ml-py missing in $deps and pip cannot fetch them (run --prepare elsewhere)"; exit 1; }
PYTHONPATH="$deps" python3 -c 'import cupti' 2>/dev/null || python3 -m pip install -q --target "$deps" cupti-python >/dev/null 2>&1 || true
export PYTHONPATH="schemas:agents:streams:validator:cli:$deps" MSGPACK_PUREPYTHON=1

# --- 2: the kernel and copies through the converters -----------------------------------------------------------
timeout 240 python3 tools/gpu_check.py "$out" || { echo "FAIL gpu_check.py (no eBPF involved): see above"; exit 1; }

# --- setup: what eBPF needs (bcc, kernel headers or kheaders, tracefs) ---------------------------------------
apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; }; }
python3 -c 'import bcc' 2>/dev/null || apt_install python3-bpfcc || true
python3 -c 'import bcc' 2>/dev/null || { echo "FAIL setup: the bcc Python module is missing (apt-get install python3-bpfcc): the sysweave trace --gpu part did not run"; exit 1; }
kbuild="/lib/modules/$(uname -r)/build"
if [ ! -e "$kbuild/include" ]; then
    apt_install "linux-headers-$(uname -r)" || true
fi
if [ ! -e "$kbuild/include" ] && { [ -e /sys/kernel/kheaders.tar.xz ] || modprobe kheaders 2>/dev/null; }; then
    # the kernel's own headers (CONFIG_IKHEADERS), unpacked where bcc and sysweave look for them
    kh="/tmp/kheaders-$(uname -r)"
    mkdir -p "$kh" "/lib/modules/$(uname -r)" && tar -xf /sys/kernel/kheaders.tar.xz -C "$kh" && ln -sfn "$kh" "$kbuild"
fi
[ -e "$kbuild/include" ] \
    || { echo "FAIL setup: no kernel headers (linux-headers-$(uname -r)) and no kheaders module: the trace part did not run"; exit 1; }
[ -e /sys/kernel/tracing/events ] || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
echo "ok   setup in $(( $(date +%s) - t0 )) s (bcc, kernel headers, tracefs, $deps)"

# --- 3: the same workload traced by sysweave trace --gpu ---------------------------------------------------------
rm -f "$out/trace.jsonl" "$out/workload.json"
timeout 300 python3 -m sysweave.cli.main trace -f --no-store --no-sampling --format jsonl -o "$out/trace.jsonl" \
    --gpu --gpu-kernel-us 0 --gpu-copy-us 0 --gpu-interval 50 \
    -- python3 tools/gpu_check.py --workload 1.5 "$out/workload.json" 2> "$out/trace.stderr"
rc=$?
cat "$out/trace.stderr"
[ "$rc" = 0 ] && [ -s "$out/workload.json" ] || { echo "FAIL sysweave trace --gpu exited $rc"; exit 1; }
echo "ok   traced: $(grep -ac '"event"' "$out/trace.jsonl") GPU/NVML events, $(grep -ac '"syscall": "ioctl"' "$out/trace.jsonl") ioctl calls"
python3 tools/gpu_check.py --verify "$out/trace.jsonl" "$out/workload.json"
rc=$?
echo "done in $(( $(date +%s) - t0 )) s; files in $out"
exit $rc
