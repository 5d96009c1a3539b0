#!/usr/bin/env bash
# The GPU device check (see tools/gpu_check.py). Needs only a Python 3 and the NVIDIA driver; the two pure
# Python dependencies travel in .local/gpucheck (pynvml, msgpack's pure-Python fallback).
set -u
cd "$(dirname "$0")/.."
out=${OUT:-${1:-/tmp/sysweave-gpu-check}}
echo "host: $(uname -r); $(python3 --version 2>&1); $(nvidia-smi -L 2>&1 | head -n 4)"
PYTHONPATH="schemas:agents:streams:validator:.local/gpucheck" MSGPACK_PUREPYTHON=1 timeout 240 python3 tools/gpu_check.py "$out"
