# sysweave — the two commands a user needs: `make run` and `make test`. Everything else is a building block.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
# gpu tests run only where a GPU is present
GPU_MARK := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo "" || echo "not gpu")
PYTEST_MARK := $(if $(GPU_MARK),-m "$(GPU_MARK)",)

.PHONY: setup setup-core run demo-stress test check lint typecheck pytest services-up services-down services-status bench fuzz clean bpf images

setup:            ## install everything the suite needs (idempotent): setup-core + ClickHouse, Kafka jars, Jaeger, helm
	@bash infra/setup.sh full

setup-core:       ## install only what `make run` needs (idempotent): Debian's bcc, kernel headers, tracefs, venv
	@bash infra/setup.sh core

run: setup-core   ## trace a bundled workload and validate a bundled pair, on the embedded defaults (no servers)
	@$(VENV)/bin/sysweave doctor
	@bash examples/run.sh

demo-stress: setup-core ## make run's validations 5 times back to back with every core busy: 0 wrong (docs/benchmarks.md)
	@$(PY) -m bench demo_stress

services-up: setup ## start Kafka (127.0.0.1:9092) and ClickHouse (127.0.0.1:9000/8123), data under .local/
	@bash infra/services.sh up

services-down:
	@bash infra/services.sh down

services-status:
	@bash infra/services.sh status

lint:
	$(VENV)/bin/ruff check schemas agents streams validator cli tests bench tools

typecheck:
	$(VENV)/bin/mypy

pytest:
	$(PY) -m pytest $(PYTEST_MARK) $(PYTEST_ARGS)

# The whole suite with the real services; services stop afterwards even when tests fail.
test: setup lint typecheck
	@bash infra/services.sh up
	@rc=0; $(PY) -m pytest $(PYTEST_MARK) $(PYTEST_ARGS) || rc=$$?; bash infra/services.sh down; exit $$rc

BENCH ?= all
bench: setup      ## the performance benchmarks (see docs/benchmarks.md); one of them: make bench BENCH=trace
	@bash infra/services.sh up
	@rc=0; $(PY) -m bench $(BENCH) || rc=$$?; bash infra/services.sh down; exit $$rc

bpf:              ## the CO-RE BPF objects capture loads through libbpf (clang/bpftool at build time only)
	@bash infra/build-bpf.sh

images: setup-core ## the agent and full OCI images from Debian packages + the wheels (mmdebstrap, buildah; as root)
	@bash infra/images.sh all

fuzz: setup-core  ## coverage-guided fuzzing of the wire decoder with atheris (Ctrl-C to stop)
	$(PY) tools/fuzz_codec_atheris.py -atheris_runs=1000000

clean:
	bash infra/services.sh down || true
	rm -rf .local/kafka/data .local/clickhouse/data
