"""Fixtures for the chart and cluster tests: the tools `make setup` builds. Missing ones FAIL with the command."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the repository
HELM = ROOT / ".local" / "bin" / "helm"
CHART = ROOT / "helm" / "sysweave"


@pytest.fixture(scope="session")
def helm() -> str:
    if not HELM.exists():
        pytest.fail(f"helm is not built at {HELM}: run 'make setup' (builds it from the Go module proxy)", pytrace=False)
    return str(HELM)


@pytest.fixture(scope="session")
def k8s_schema() -> Path:
    from .k8s_schema import CRD_DIR, SPEC_DIR

    if not (SPEC_DIR / "apis__apps__v1_openapi.json").exists() or not list(CRD_DIR.glob("*podmonitors.yaml")):
        pytest.fail(f"the Kubernetes OpenAPI schema is not at {SPEC_DIR}: run 'make setup'", pytrace=False)
    return SPEC_DIR
