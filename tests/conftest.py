"""Shared fixtures. A test that needs a service checks for it and FAILS (never skips) with the command that
starts it, so `make test` cannot pass with a service silently missing."""

from __future__ import annotations

import os
import socket

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Every command a test starts without --store writes to a store of this session's own, never the user's
    default store (~/.local/share/sysweave/store): a test passes the same on a fresh host and leaves no
    history behind that a later test or run could depend on."""
    if "SYSWEAVE_STORE" not in os.environ:
        import tempfile

        os.environ["SYSWEAVE_STORE"] = tempfile.mkdtemp(prefix="sysweave-test-store-")


KAFKA = os.environ.get("SYSWEAVE_TEST_KAFKA", "127.0.0.1:9092")
CLICKHOUSE = os.environ.get("SYSWEAVE_TEST_CLICKHOUSE", "127.0.0.1:9000")


def _port_open(hostport: str) -> bool:
    host, port = hostport.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    if not _port_open(KAFKA):
        pytest.fail(f"Kafka is not reachable at {KAFKA}: start it with 'make services-up'", pytrace=False)
    return KAFKA


@pytest.fixture(scope="session")
def clickhouse_hostport() -> tuple[str, int]:
    if not _port_open(CLICKHOUSE):
        pytest.fail(f"ClickHouse is not reachable at {CLICKHOUSE}: start it with 'make services-up'", pytrace=False)
    host, port = CLICKHOUSE.rsplit(":", 1)
    return host, int(port)


@pytest.fixture(scope="session")
def bpf_ready() -> None:
    """Real eBPF needs root, Debian's bcc and kernel headers; `make setup` (as root) provides them."""
    if os.geteuid() != 0:
        pytest.fail("eBPF tests need root: run 'sudo make test'", pytrace=False)
    try:
        import bcc  # noqa: F401
    except ImportError:
        pytest.fail("bcc is not importable: run 'make setup' (installs python3-bpfcc and links it into .venv)",
                    pytrace=False)
    if not os.path.exists(f"/lib/modules/{os.uname().release}/build/include"):
        pytest.fail("kernel headers are not linked for this kernel: run 'make setup'", pytrace=False)
