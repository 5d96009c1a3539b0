#!/usr/bin/env bash
# `make run`: the main job on the embedded defaults (no Kafka, no ClickHouse server).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/sysweave demo
