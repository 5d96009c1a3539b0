"""The agent image built by `make images` (infra/images.sh: mmdebstrap + buildah, no base image pulled), run
with podman as the chart runs it: host PID namespace, host network (the broker), every capability dropped but
the chart's own (helm values agent.capabilities), the node's cgroup tree read-only, no /lib/modules and no
compiler in the image. It captures a job that runs in a network-namespace "host" of the test bed, inside a
cgroup, through the real Kafka broker: the job's exact stat() count arrives, an identical job outside does not.
Slow: builds the image first where it is missing (`sudo make images` builds both)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from distributed.helpers import network_testbed  # tests/distributed (pytest puts tests/ on the path)

from .agent_helpers import consume_events, free_port, stat_calls, wait_metrics
from .test_agent_modes import N, Workload, cgroup_dir, topics_suffix  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.bpf, pytest.mark.kafka]
IMAGE = "localhost/sysweave/agent:0.1.0"
VALUES = Path(__file__).resolve().parents[2] / "helm" / "sysweave" / "values.yaml"
CG2 = "/run/sysweave-test-cgroup2"  # where the podman below sees the node's cgroup v2 tree


def podman_run(*args: str) -> list[str]:
    """``podman run`` as this host allows it. The VM mounts cgroup v2 beside v1 (hybrid), which crun refuses
    while v2 has controllers, so podman runs in a private mount namespace without /sys/fs/cgroup/unified (its
    tree bind-mounted at CG2 first, for the container's read-only /host/sys/fs/cgroup); and root here lacks
    CAP_SYS_RESOURCE, so the container's limits are set below the host's instead of raised."""
    hide = (f"mkdir -p {CG2} && mount --bind /sys/fs/cgroup/unified {CG2} && umount /sys/fs/cgroup/unified"
            if Path("/sys/fs/cgroup/unified/cgroup.controllers").exists()
            else f"mkdir -p {CG2} && mount --bind /sys/fs/cgroup {CG2}")
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", f'{hide} && exec "$@"', "sh",
            "podman", "run", "--rm", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=16384:16384", *args]


def chart_capabilities() -> list[str]:
    caps = yaml.safe_load(VALUES.read_text())["agent"]["capabilities"]
    assert caps and all(re.fullmatch(r"[A-Z_]+", c) for c in caps), caps
    return [f"CAP_{c}" for c in caps]


def runtime_default_seccomp(path: Path) -> Path:
    """podman's default seccomp profile as containerd's RuntimeDefault (the chart's seccompProfile) has it since
    1.6: bpf() allowed to CAP_BPF holders and perf_event_open() to CAP_PERFMON holders (podman 4.3's own
    profile allows them to CAP_SYS_ADMIN only)."""
    profile = json.loads(Path("/usr/share/containers/seccomp.json").read_text())
    gated = {"bpf": "CAP_BPF", "perf_event_open": "CAP_PERFMON"}
    for rule in profile["syscalls"]:
        rule["names"] = [n for n in rule["names"] if n not in gated]
    profile["syscalls"] = [r for r in profile["syscalls"] if r["names"]]
    profile["syscalls"] += [{"names": [name], "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}}
                            for name, cap in gated.items()]
    path.write_text(json.dumps(profile))
    return path


@pytest.fixture(scope="module")
def agent_image() -> str:
    if not shutil.which("podman"):
        pytest.fail("podman is missing: run 'sudo make setup' (installs mmdebstrap, buildah, podman, crun)", pytrace=False)
    if subprocess.run(["podman", "image", "exists", IMAGE]).returncode != 0:  # a clean clone: build it (minutes)
        root = Path(__file__).resolve().parents[2]
        built = subprocess.run(["bash", str(root / "infra" / "images.sh"), "agent"], capture_output=True, text=True,
                               timeout=1800)
        if built.returncode != 0:
            pytest.fail(f"building {IMAGE} failed (sudo make images):\n{built.stderr[-3000:]}", pytrace=False)
    return IMAGE


@pytest.fixture(scope="module")
def testbed() -> Iterator[dict[str, str]]:
    yield from network_testbed("pi", {"B": ("10.79.1.1", "10.79.1.2")})


def test_the_agent_image_holds_no_compiler_and_no_headers(agent_image: str) -> None:
    probe = ("for t in clang clang-14 gcc cc llc bpftool; do command -v $t; done; ls -d /lib/modules /usr/src/linux-* "
             "/usr/lib/llvm-* 2>/dev/null; python3 -c 'import bcc' 2>/dev/null && echo bcc; "
             "ls /opt/sysweave/lib/python3*/site-packages/sysweave/agents/bpf/*.bpf.o")
    out = subprocess.run(podman_run("--network", "none", "--entrypoint", "sh", agent_image, "-c", probe),
                         capture_output=True, text=True, timeout=120)
    lines = out.stdout.split()
    assert [os.path.basename(x) for x in lines] == ["syscalls.bpf.o", "uprobes.bpf.o"], out.stdout + out.stderr


def test_the_agent_image_captures_a_job_under_the_charts_capabilities(
        agent_image: str, testbed: dict[str, str], kafka_bootstrap: str, topics_suffix: str,  # noqa: F811
        tmp_path: Path, cgroup_dir: Path) -> None:  # noqa: F811
    port, name = free_port(), f"sysweave-agent-test-{uuid.uuid4().hex[:6]}"
    in_tree = cgroup_dir.relative_to(cgroup_dir.parent)  # the test's cgroup, under the v2 root
    agent = subprocess.Popen(podman_run(
        "--name", name, "--pid", "host", "--network", "host", "--cap-drop", "all",
        "--security-opt", f"seccomp={runtime_default_seccomp(tmp_path / 'seccomp.json')}",
        *(f"--cap-add={c}" for c in chart_capabilities()), "--user", "0",
        "-v", f"{CG2}:/host/sys/fs/cgroup:ro", "-v", "/sys/kernel/tracing:/sys/kernel/tracing:ro",
        "-e", f"SYSWEAVE_TOPIC_SUFFIX={topics_suffix}", agent_image,
        "agent", f"--kafka={kafka_bootstrap}", "--host-id", "imaged", "--window-s", "1", f"--metrics-port={port}",
        "--spool=/tmp/spool", f"--cgroup=/host/sys/fs/cgroup/{in_tree}"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_metrics(port, agent)
        # the job: a "host" of the test bed (its own network namespace), joining the traced cgroup first
        # (the cgroup first: `ip netns exec` remounts /sys, hiding the cgroup mounts; both exec, same pid)
        inside = Workload(tmp_path, "inside", ["sh", "-c", f'echo $$ > {cgroup_dir}/cgroup.procs && exec "$@"', "sh",
                                               "ip", "netns", "exec", testbed["B"]])
        outside = Workload(tmp_path, "outside", ["ip", "netns", "exec", testbed["B"]])
        try:
            inside.burst()
            outside.burst()
            host_net = os.readlink("/proc/self/ns/net")
            assert os.readlink(f"/proc/{inside.pid}/ns/net") != host_net  # the job ran on the test bed's "host"
        finally:
            inside.finish()
            outside.finish()
    finally:
        subprocess.run(["podman", "stop", "--time", "30", name], capture_output=True, timeout=90)
        _, err = agent.communicate(timeout=90)
    events = consume_events(kafka_bootstrap, topics_suffix)
    assert stat_calls(events, inside.pid) >= N, err.decode()[-3000:]
    assert not [e for e in events if e.h.pid == outside.pid]
    assert {e.h.host_id for e in events} == {"imaged"}


def test_function_probes_in_the_image_under_the_charts_capabilities(agent_image: str, tmp_path: Path) -> None:
    """uprobes.bpf.o through libbpf inside the image: no compiler, no bcc, no bpffs, and none of the SYS_ADMIN
    that agent.probeSysAdmin adds for older kernels (uprobe_multi links on this 6.18 kernel)."""
    code = "import os; [os.getpid() for _ in range(1000)]"
    argv = ["trace", "-c", "--no-store", "--format", "json", "--uprobe", "c:getpid", "--", "python3", "-c"]
    counts = []
    for job in (code, "pass"):  # the interpreter's own getpid calls are the same in both runs
        out = subprocess.run(podman_run(
            "--pid", "host", "--network", "none", "--cap-drop", "all",
            "--security-opt", f"seccomp={runtime_default_seccomp(tmp_path / 'seccomp.json')}",
            *(f"--cap-add={c}" for c in chart_capabilities()), "--user", "0",
            "-v", "/sys/kernel/tracing:/sys/kernel/tracing:ro", agent_image, *argv, job),
            capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stderr[-3000:]
        doc = json.loads(out.stdout.strip().splitlines()[-1])
        counts.append({f["function"]: f["calls"] for f in doc["functions"]}.get("getpid", 0))
    assert "SYS_ADMIN" not in chart_capabilities() and counts[0] - counts[1] == 1000, counts
