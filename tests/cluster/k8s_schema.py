"""Validate rendered Kubernetes objects against the OpenAPI schema of a pinned Kubernetes release.

The schema is the release's own ``api/openapi-spec/v3`` (one OpenAPI 3 document per group/version) from the Go
module ``k8s.io/kubernetes@K8S_VERSION``, copied under ``.local/k8s-openapi/`` by ``make setup``. Validation is
strict, as ``kubeconform -strict`` and the API server's field validation: an object schema with ``properties``
rejects fields it does not name (a misspelt ``hostPid`` fails), except where the schema preserves unknown fields.
Custom resources (the Prometheus Operator's PodMonitor) are validated the same way against their CRD's
``openAPIV3Schema``, from the Go module ``github.com/prometheus-operator/prometheus-operator`` (``crds/``).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "v1.34.2"  # keep in step with infra/setup.sh
SPEC_DIR = ROOT / ".local" / "k8s-openapi" / K8S_VERSION
CRD_DIR = ROOT / ".local" / "k8s-openapi" / "crds"

__all__ = ["CRD_DIR", "K8S_VERSION", "SPEC_DIR", "SchemaMissing", "validate_object"]


class SchemaMissing(LookupError):
    """No schema for this apiVersion/kind in the pinned release (e.g. a CRD such as PodMonitor)."""


def _spec_file(api_version: str) -> Path:
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return SPEC_DIR / f"apis__{group}__{version}_openapi.json"
    return SPEC_DIR / f"api__{api_version}_openapi.json"


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


def _crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    import yaml

    group, _, version = api_version.rpartition("/")
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["group"] != group or crd["spec"]["names"]["kind"] != kind:
            continue
        for v in crd["spec"]["versions"]:
            if v["name"] == version:
                return jsonschema.Draft7Validator(_strict(v["schema"]["openAPIV3Schema"]))
    raise SchemaMissing(f"{kind} ({api_version}) is neither in Kubernetes {K8S_VERSION} nor a known CRD in {CRD_DIR}")


@cache
def _validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    path = _spec_file(api_version)
    if not path.exists():
        return _crd_validator(api_version, kind)
    schemas = json.loads(path.read_text())["components"]["schemas"]
    group, _, version = api_version.rpartition("/")
    for name, schema in schemas.items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            if (gvk.get("group", ""), gvk["version"], gvk["kind"]) == (group, version, kind):
                root = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": _strict(copy.deepcopy(schemas))}}
                return jsonschema.Draft7Validator(root)
    raise SchemaMissing(f"{kind} is not a kind of {api_version} in Kubernetes {K8S_VERSION}")


def validate_object(obj: dict[str, Any]) -> list[str]:
    """Every violation of the pinned schema in ``obj`` (empty: valid). Raises SchemaMissing for unknown kinds."""
    validator = _validator(obj["apiVersion"], obj["kind"])
    return [f"{obj['kind']}/{obj.get('metadata', {}).get('name')}: {'.'.join(map(str, e.absolute_path)) or '<root>'}: "
            f"{e.message}" for e in validator.iter_errors(obj)]
