"""The images' Dockerfiles. There is no Docker engine on the development machines, so they are linted
(dockerfilelint, from the npm registry, installed by `make setup`) and checked for what they promise, not built."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from .conftest import CHART, ROOT

DOCKER = ROOT / "docker"
LINT = ROOT / ".local" / "npm" / "node_modules" / ".bin" / "dockerfilelint"
IMAGES = {"agent": DOCKER / "agent.Dockerfile", "full": DOCKER / "full.Dockerfile"}


@pytest.fixture(scope="module")
def dockerfilelint() -> str:
    if not LINT.exists():
        pytest.fail(f"dockerfilelint is not installed at {LINT}: run 'make setup'", pytrace=False)
    return str(LINT)


def lint(tool: str, *args: str) -> list[dict]:
    out = subprocess.run([tool, "-j", *args], capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout)["files"]  # type: ignore[no-any-return]


def test_dockerfiles_lint_clean(dockerfilelint: str) -> None:
    files = lint(dockerfilelint, *map(str, IMAGES.values()))
    assert len(files) == 2 and all(f["issues_count"] == 0 for f in files), json.dumps(files, indent=1)


def test_the_linter_does_find_problems(dockerfilelint: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get install python3\nEXPOSE 99999\n")
    (f,) = lint(dockerfilelint, str(bad))
    titles = {i["title"] for i in f["issues"]}
    assert "Base Image Missing Tag" in titles and f["issues_count"] >= 3, titles


def stages(path) -> list[str]:  # type: ignore[no-untyped-def]
    return re.findall(r"^FROM (\S+)", path.read_text(), re.M)


@pytest.mark.parametrize("image", IMAGES)
def test_multi_stage_on_a_pinned_base(image: str) -> None:
    bases = stages(IMAGES[image])
    assert len(bases) == 2, bases
    for base in bases:
        assert re.fullmatch(r"[a-z0-9./-]+:\d+(\.\d+)+[-a-z]*(@sha256:[0-9a-f]{64})?", base), f"unpinned base {base}"
    assert "COPY --from=build" in IMAGES[image].read_text()


def test_agent_image_carries_only_the_agent_components() -> None:
    text = IMAGES["agent"].read_text()
    copied = set(re.findall(r"^COPY (\w+)/", text, re.M))
    assert copied == {"schemas", "agents", "cli"}
    assert not re.search(r"faust|clickhouse|chdb|streams|validator", text.split("\nFROM", 1)[1].lower())
    # the CO-RE object through Debian's libbpf: no bcc (LLVM), no compiler, no kernel headers in the image
    runtime = text.split("\nFROM", 2)[2]
    assert "libbpf1" in runtime and "iproute2" in runtime and "syscalls.bpf.o" in text and "uprobes.bpf.o" in text
    assert not re.search(r"bpfcc|clang|llvm|gcc|linux-headers", runtime)
    ignore = (DOCKER / "agent.Dockerfile.dockerignore").read_text().split()
    assert ignore[ignore.index("*"):][:4] == ["*", "!schemas/", "!agents/", "!cli/"]


def test_full_image_runs_as_the_charts_non_root_user() -> None:
    uid = yaml.safe_load((CHART / "values.yaml").read_text())["nonRootUser"]
    text = IMAGES["full"].read_text()
    assert f"USER {uid}:{uid}" in text and f"--uid {uid}" in text
    assert re.search(r"pip install --no-cache-dir \.$", text, re.M)  # the whole distribution
