# The node agent image: sysweave-schemas + sysweave-agents + the CLI only (no faust, no clickhouse-driver, no
# chdb), on Debian's python3 with Debian's libbpf: capture loads the CO-RE object built ahead of time
# (agents/sysweave/agents/bpf/syscalls.bpf.o, `make bpf` before building this image), so the image holds no
# compiler, no LLVM/bcc and no kernel headers; nodes need a kernel with BTF (/sys/kernel/btf/vmlinux, 5.8+).
#   make bpf && docker build -f docker/agent.Dockerfile -t sysweave/agent:0.1.0 .   (from the repository root)
# Without a Docker engine, `sudo make images` (infra/images.sh: mmdebstrap + buildah) builds the same contents;
# tests/cluster/test_agent_image.py runs that image with podman. tests/cluster/test_docker.py lints this file.
# Both stages use the same pinned base (Debian 12.11, whose python3 is 3.11 and whose bcc the agent uses);
# pin its digest too when publishing (debian:12.11-slim@sha256:…, from the registry you push to).

FROM debian:12.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY schemas/ schemas/
COPY agents/ agents/
COPY cli/ cli/
RUN test -f agents/sysweave/agents/bpf/syscalls.bpf.o && test -f agents/sysweave/agents/bpf/uprobes.bpf.o \
    && python3 -m venv /opt/sysweave \
    && /opt/sysweave/bin/pip install --no-cache-dir ./schemas "./agents[gpu]" ./cli

FROM debian:12.11-slim
LABEL org.opencontainers.image.title="sysweave agent" \
      org.opencontainers.image.source="https://example.invalid/sysweave" \
      org.opencontainers.image.description="sysweave node agent: eBPF capture to Kafka"
# iproute2: the agent reports the node's addresses with `ip -j addr`
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 libbpf1 iproute2 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/sysweave /opt/sysweave
ENV PATH="/opt/sysweave/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Root with every capability dropped but CAP_BPF, CAP_PERFMON and CAP_DAC_READ_SEARCH (the chart's securityContext):
# Kubernetes cannot hand capabilities to a non-root process.
USER 0
ENTRYPOINT ["sysweave"]
CMD ["agent", "--help"]
