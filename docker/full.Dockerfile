# The full image: every component (schemas, agents, streams, validator, cli) for the stream workers, the
# validator service and the migrate Job. Runs as a non-root user (10001, the chart's nonRootUser) and works
# with a read-only root filesystem (writes only under /tmp and /var/lib/sysweave, both volumes in the chart).
#   docker build -f docker/full.Dockerfile -t sysweave/sysweave:0.1.0 .      (from the repository root)
# Not built in CI: the development machines have no Docker engine. tests/cluster/test_docker.py lints it.
# Both stages use the same pinned base (Debian 12.11, python3 3.11);
# pin its digest too when publishing (debian:12.11-slim@sha256:…, from the registry you push to).

FROM debian:12.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-pip python3-dev gcc \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas/ schemas/
COPY agents/ agents/
COPY streams/ streams/
COPY validator/ validator/
COPY cli/ cli/
RUN python3 -m venv /opt/sysweave \
    && /opt/sysweave/bin/pip install --no-cache-dir .

FROM debian:12.11-slim
LABEL org.opencontainers.image.title="sysweave" \
      org.opencontainers.image.source="https://example.invalid/sysweave" \
      org.opencontainers.image.description="sysweave stream workers, validator service and migrations"
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sysweave \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/sysweave --shell /usr/sbin/nologin sysweave \
    && mkdir -p /var/lib/sysweave \
    && chown sysweave:sysweave /var/lib/sysweave
COPY --from=build /opt/sysweave /opt/sysweave
ENV PATH="/opt/sysweave/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
WORKDIR /var/lib/sysweave
USER 10001:10001
ENTRYPOINT ["sysweave"]
CMD ["--help"]
