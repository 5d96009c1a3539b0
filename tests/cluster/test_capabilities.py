"""The agent's capability set, proven: `sysweave agent` as a NON-ROOT user holding exactly the capabilities the
chart grants (ambient, via setpriv) captures a command and ships its events through the real broker; with any one
of them removed it refuses to start and names the missing capability.

The non-root user runs Debian's python3 (where bcc lives) on the agent-only components (schemas, agents, cli) and
their three dependencies, as the agent image does: the project's .venv lives under /root, which it cannot read."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sysweave.agents.bpf.syscalls import REQUIRED_CAPABILITIES
from sysweave.schemas.events import ProcessEvent, ProcessEventType

from .agent_helpers import ROOT, consume_events, make_topics, new_suffix

pytestmark = [pytest.mark.bpf, pytest.mark.kafka]
USER = "sysweave-captest"
CHART_CAPS = yaml.safe_load((ROOT / "helm/sysweave/values.yaml").read_text())["agent"]["capabilities"]


@pytest.fixture(scope="module")
def agent_user(bpf_ready: None) -> Iterator[tuple[str, Path]]:
    """A non-root user, and a directory it owns holding the agent's import path."""
    if not shutil.which("setpriv"):
        pytest.fail("setpriv is missing: apt-get install util-linux", pytrace=False)
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
    pw = pwd.getpwnam(USER)
    home = Path(tempfile.mkdtemp(prefix="sysweave-cap-"))
    site = home / "site"
    site.mkdir()
    import kafka
    import msgpack
    import prometheus_client

    for mod in (kafka, msgpack, prometheus_client):
        (site / mod.__name__).symlink_to(Path(mod.__file__ or "").parent)
    for p in (home, site):
        os.chown(p, pw.pw_uid, pw.pw_gid)
    home.chmod(0o755)
    yield USER, home
    shutil.rmtree(home, ignore_errors=True)


def run_agent_as(user: str, home: Path, caps: list[str], suffix: str, bootstrap: str, *args: str
                 ) -> subprocess.CompletedProcess[str]:
    capset = ",".join(["-all", *(f"+{c.lower()}" for c in caps)])
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home), "SYSWEAVE_TOPIC_SUFFIX": suffix,
           "PYTHONPATH": ":".join([str(ROOT / "schemas"), str(ROOT / "agents"), str(ROOT / "cli"), str(home / "site")])}
    return subprocess.run(
        ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", f"--inh-caps={capset}",
         f"--ambient-caps={capset}", f"--bounding-set={capset}", "--",
         "/usr/bin/python3", "-m", "sysweave.cli.main", "agent", "--kafka", bootstrap, "--metrics-port", "0",
         "--spool", str(home / "spool"), "--host-id", "captest", *args],
        env=env, capture_output=True, text=True, timeout=240, cwd=home)


def test_chart_grants_what_the_agent_checks() -> None:
    assert [name.removeprefix("CAP_") for name, _ in REQUIRED_CAPABILITIES] == CHART_CAPS


def test_non_root_with_exactly_the_chart_capabilities_captures(agent_user: tuple[str, Path], kafka_bootstrap: str) -> None:
    user, home = agent_user
    suffix = new_suffix()
    make_topics(kafka_bootstrap, suffix)
    r = run_agent_as(user, home, CHART_CAPS, suffix, kafka_bootstrap,
                     "--", "/bin/sh", "-c", "id -u; cat /etc/hostname >/dev/null; echo captured")
    assert r.returncode == 0, r.stderr
    uid = r.stdout.split()[0]
    assert uid == str(pwd.getpwnam(user).pw_uid) and uid != "0" and "captured" in r.stdout

    def execs(events: list) -> set[str]:
        return {os.path.basename(e.filename) for e in events
                if isinstance(e, ProcessEvent) and e.type == ProcessEventType.EXEC}

    events = consume_events(kafka_bootstrap, suffix, lambda ev: {"sh", "id", "cat"} <= execs(ev))
    assert {"sh", "id", "cat"} <= execs(events), f"exec events seen: {execs(events)}"
    assert all(e.h.host_id == "captest" for e in events)


@pytest.mark.parametrize("missing", CHART_CAPS)
def test_one_capability_fewer_fails_naming_it(agent_user: tuple[str, Path], kafka_bootstrap: str, missing: str) -> None:
    user, home = agent_user
    r = run_agent_as(user, home, [c for c in CHART_CAPS if c != missing], new_suffix(), kafka_bootstrap,
                     "--", "/bin/true")
    assert r.returncode != 0
    assert f"lacks CAP_{missing}" in r.stderr, r.stderr


def test_function_probes_and_sys_admin(kafka_bootstrap: str, bpf_ready: None, tmp_path: Path) -> None:
    """The default loader (uprobes.bpf.o through libbpf, uprobe_multi links) probes functions with the chart's
    base capabilities alone; the bcc fallback needs the SYS_ADMIN that agent.gpu.enabled / agent.uprobes add
    (its uprobe PMU perf events and the pinned-map reopen refuse CAP_BPF + CAP_PERFMON alone)."""
    import sys

    def run(caps: list[str], loader: str = "auto") -> subprocess.CompletedProcess[str]:
        capset = ",".join(["-all", *(f"+{c.lower()}" for c in caps)])
        return subprocess.run(
            ["setpriv", f"--inh-caps={capset}", f"--bounding-set={capset}", "--", sys.executable, "-m",
             "sysweave.cli.main", "agent", "--kafka", kafka_bootstrap, "--metrics-port", "0", "--no-sdk",
             "--spool", str(tmp_path / "spool"), "--uprobe", "c:getpid", "--", "/bin/true"],
            env={**os.environ, "SYSWEAVE_TOPIC_SUFFIX": new_suffix(), "SYSWEAVE_BPF_LOADER": loader},
            capture_output=True, text=True, timeout=240)

    default = run(CHART_CAPS)
    assert default.returncode == 0, default.stderr[-2000:]
    ok = run([*CHART_CAPS, "SYS_ADMIN"], "bcc")
    assert ok.returncode == 0, ok.stderr[-2000:]
    refused = run(CHART_CAPS, "bcc")
    assert refused.returncode != 0 and "function-probe program failed" in refused.stderr, refused.stderr[-2000:]
