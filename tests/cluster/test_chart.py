"""The Helm chart, proven: `helm lint --strict`, `helm template` with default and non-default values, every
rendered object validated against the pinned Kubernetes release's OpenAPI schema, and the security and
operability properties the chart promises (least-privilege agent, non-root read-only services, migrate Job)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sysweave.agents.bpf.syscalls import REQUIRED_CAPABILITIES

from .conftest import CHART
from .k8s_schema import K8S_VERSION, SchemaMissing, validate_object

NONDEFAULT = Path(__file__).with_name("values-nondefault.yaml")
VALUES = {"default": [], "nondefault": ["-f", str(NONDEFAULT)]}


def render(helm: str, *args: str) -> list[dict[str, Any]]:
    out = subprocess.run([helm, "template", "rel", str(CHART), "--namespace", "tracing", "--kube-version", K8S_VERSION, *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("values", VALUES)
def test_lint_strict(helm: str, values: str) -> None:
    out = subprocess.run([helm, "lint", "--strict", "--kube-version", K8S_VERSION, str(CHART), *VALUES[values]],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "0 chart(s) failed" in out.stdout, out.stdout + out.stderr
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout, out.stdout


@pytest.mark.parametrize("values", VALUES)
def test_every_object_matches_the_kubernetes_schema(helm: str, k8s_schema: Path, values: str) -> None:
    objs = render(helm, *VALUES[values])
    errors: list[str] = []
    for obj in objs:
        errors += validate_object(obj)  # SchemaMissing for a kind neither Kubernetes nor a known CRD defines
    assert not errors, "\n".join(errors)
    kinds = sorted(o["kind"] for o in objs)
    expected = ["ConfigMap", "DaemonSet", "Deployment", "Deployment", "Job", "PriorityClass", "Service"]
    if values == "nondefault":
        expected = ["DaemonSet", "Deployment", "Deployment", "Job", "PodMonitor", "Service"]
    assert kinds == expected


def test_the_validator_rejects_what_the_api_server_would(helm: str, k8s_schema: Path) -> None:
    ds = by_kind(render(helm), "DaemonSet")[0]
    pod_spec(ds)["hostPid"] = True  # misspelt field
    pod_spec(ds)["containers"][0]["securityContext"]["capabilities"]["add"] = "BPF"  # a string, not a list
    errors = "\n".join(validate_object(ds))
    assert "'hostPid' was unexpected" in errors and "is not of type 'array'" in errors, errors
    (pm,) = by_kind(render(helm, *VALUES["nondefault"]), "PodMonitor")
    pm["spec"]["podMetricsEndpoints"][0]["intervall"] = "15s"
    assert "'intervall' was unexpected" in "\n".join(validate_object(pm))
    with pytest.raises(SchemaMissing):
        validate_object({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})


def test_agent_is_least_privilege(helm: str) -> None:
    ds = by_kind(render(helm), "DaemonSet")[0]
    spec = pod_spec(ds)
    (agent,) = spec["containers"]
    sc = agent["securityContext"]
    assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    # Exactly what the agent's own check requires (measured as a non-root user: tests/cluster/test_capabilities.py).
    assert sc["capabilities"]["add"] == [name.removeprefix("CAP_") for name, _ in REQUIRED_CAPABILITIES]
    assert spec["hostPID"] is True and spec["hostNetwork"] is True and spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert "--gpu" not in agent["args"] and not [m for m in agent["volumeMounts"] if m["name"] == "bpffs"]
    mounts = {m["mountPath"]: m for m in agent["volumeMounts"]}
    for path in ("/sys/kernel/tracing", "/sys/kernel/debug", "/host/sys/fs/cgroup"):
        assert mounts[path].get("readOnly") is True, path
    # CO-RE capture: no headers needed, and a node without /usr/src (COS, Bottlerocket) must still start the pod
    host_paths = {v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    assert "/lib/modules" not in mounts and "/usr/src" not in mounts and not {"/lib/modules", "/usr/src"} & host_paths
    assert not mounts["/var/lib/sysweave/spool"].get("readOnly")
    assert "--metrics-addr=0.0.0.0" in agent["args"] and "--metrics-port=9464" in agent["args"] and "--all" in agent["args"]
    assert agent["ports"] == [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}]
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["priorityClassName"] == "rel-node-critical"
    assert agent["resources"]["requests"] and agent["resources"]["limits"]["memory"]
    assert ds["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    env = {e["name"]: e for e in agent["env"]}
    assert env["SYSWEAVE_HOST_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env["SYSWEAVE_NODE_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    svc = by_kind(render(helm), "Service")[0]
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["ports"][0]["targetPort"] == "metrics"
    assert svc["spec"]["selector"] == ds["spec"]["selector"]["matchLabels"]


def test_function_probes_on_kernels_with_uprobe_multi_need_no_sys_admin(helm: str) -> None:
    """agent.probeSysAdmin: false (kernels 6.6+) keeps the base capabilities with probes on; without
    agent.kernelHeaders (no bcc fallback) no bpffs is mounted."""
    objs = render(helm, "--set", "agent.uprobes={libc:getpid}", "--set", "agent.probeSysAdmin=false")
    (agent,) = pod_spec(by_kind(objs, "DaemonSet")[0])["containers"]
    assert agent["securityContext"]["capabilities"]["add"] == ["BPF", "PERFMON", "DAC_READ_SEARCH"]
    assert "--uprobe=libc:getpid" in agent["args"] and "/sys/fs/bpf" not in str(agent["volumeMounts"])
    (agent,) = pod_spec(by_kind(render(helm, "--set", "agent.uprobes={libc:getpid}"), "DaemonSet")[0])["containers"]
    assert agent["securityContext"]["capabilities"]["add"][-1] == "SYS_ADMIN"  # the default: any kernel


def test_agent_nondefault_modes(helm: str) -> None:
    objs = render(helm, *VALUES["nondefault"])
    ds = by_kind(objs, "DaemonSet")[0]
    spec = pod_spec(ds)
    (agent,) = spec["containers"]
    assert "--cgroup=/host/sys/fs/cgroup/kubepods.slice" in agent["args"] and "--all" not in agent["args"]
    assert agent["securityContext"]["capabilities"]["add"] == ["BPF", "PERFMON", "DAC_READ_SEARCH", "SYS_ADMIN"]
    assert "--gpu" in agent["args"] and "--uprobe=libc:getpid" in agent["args"]
    assert {"name": "bpffs", "mountPath": "/sys/fs/bpf"} in agent["volumeMounts"]
    mounts = {m["mountPath"]: m for m in agent["volumeMounts"]}  # agent.kernelHeaders: for bcc's run-time compile
    assert mounts["/lib/modules"]["readOnly"] is True and mounts["/usr/src"]["readOnly"] is True
    assert spec["runtimeClassName"] == "nvidia" and spec["hostNetwork"] is False and "dnsPolicy" not in spec
    assert spec["priorityClassName"] == "system-node-critical"
    assert agent["image"] == "registry.example.com/sysweave/agent:0.2.0"
    (pm,) = by_kind(objs, "PodMonitor")
    assert pm["apiVersion"] == "monitoring.coreos.com/v1" and pm["metadata"]["labels"]["release"] == "prometheus"
    assert pm["spec"]["selector"]["matchLabels"] == ds["spec"]["selector"]["matchLabels"]
    assert pm["spec"]["podMetricsEndpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]


@pytest.mark.parametrize("bad, message", [
    (["--set", "agent.mode=pid"], "agent.mode must be all or cgroup"),
    (["--set", "agent.mode=cgroup"], "agent.cgroup is required"),
])
def test_bad_values_fail_to_render(helm: str, bad: list[str], message: str) -> None:
    out = subprocess.run([helm, "template", "rel", str(CHART), "--kube-version", K8S_VERSION, *bad],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and message in out.stderr, out.stderr


@pytest.mark.parametrize("values", VALUES)
def test_services_run_non_root_with_read_only_root(helm: str, values: str) -> None:
    objs = render(helm, *VALUES[values])
    workloads = by_kind(objs, "Deployment") + by_kind(objs, "Job")
    assert {o["metadata"]["name"] for o in workloads} == {"rel-streams", "rel-validator", "rel-migrate"}
    for obj in workloads:
        spec = pod_spec(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 10001
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])  # writable scratch
        assert spec["automountServiceAccountToken"] is False


def test_migrate_job_applies_schema_and_topics(helm: str) -> None:
    (job,) = by_kind(render(helm, *VALUES["nondefault"]), "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    args = pod_spec(job)["containers"][0]["args"]
    assert args == ["validator", "migrate", "--clickhouse=clickhouse://ch.example:9000/traces",
                    "--kafka=kafka-0.kafka:9092,kafka-1.kafka:9092", "--partitions=24", "--replication=3",
                    "--retention-days=14"]
    # the arguments are the CLI's own (argparse would reject a typo at run time in the cluster)
    from sysweave.cli.main import build_parser

    ns = build_parser().parse_args(args)
    assert (ns.kafka, ns.partitions, ns.replication, ns.retention_days) == ("kafka-0.kafka:9092,kafka-1.kafka:9092", 24, 3, 14)


def test_agent_and_worker_args_parse(helm: str) -> None:
    from sysweave.cli.main import build_parser

    for values in VALUES.values():
        objs = render(helm, *values)
        for obj in by_kind(objs, "DaemonSet") + by_kind(objs, "Deployment"):
            for c in pod_spec(obj)["containers"]:
                build_parser().parse_args(c["args"])  # SystemExit on an unknown flag


def test_dashboard_configmap_holds_the_dashboard(helm: str) -> None:
    (cm,) = by_kind(render(helm), "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["sysweave.json"])
    assert dash == json.loads((CHART / "files" / "dashboards" / "sysweave.json").read_text())
    assert {t["datasource"]["type"] for p in dash["panels"] for t in p["targets"]} == {
        "prometheus", "grafana-clickhouse-datasource"}
