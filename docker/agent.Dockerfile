# The node agent image: sysweave-schemas + sysweave-agents + the CLI only (no faust, no clickhouse-driver, no
# chdb), on Debian's python3 with Debian's bcc (python3-bpfcc; never PyPI's unrelated "bcc"). Kernel headers
# come from the node: the chart mounts /lib/modules and /usr/src read-only.
#   docker build -f docker/agent.Dockerfile -t sysweave/agent:0.1.0 .        (from the repository root)
# Not built in CI: the development machines have no Docker engine. tests/cluster/test_docker.py lints it.
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
# --system-site-packages: the runtime stage's Debian bcc module stays importable from the venv
RUN python3 -m venv --system-site-packages /opt/sysweave \
    && /opt/sysweave/bin/pip install --no-cache-dir ./schemas "./agents[gpu]" ./cli

FROM debian:12.11-slim
LABEL org.opencontainers.image.title="sysweave agent" \
      org.opencontainers.image.source="https://example.invalid/sysweave" \
      org.opencontainers.image.description="sysweave node agent: eBPF capture to Kafka"
# iproute2: the agent reports the node's addresses with `ip -j addr`
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-bpfcc iproute2 ca-certificates \
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
