"""Offline Kubernetes schema validation: kubernetes-validate's strict schemas plus the CRD schemas here.

One cached Draft 2020-12 validator per (Kubernetes version, apiVersion, kind), reporting every error
(kubernetes-validate's own validate() reloads the definitions per call and stops at the first error).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

KUBERNETES_VERSIONS = ("1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0", "1.35.0")
CRD_SCHEMAS = Path(__file__).parent / "crd_schemas"
_BUILTIN = resources.files("kubernetes_validate") / "kubernetes-json-schema"


def _load(path: Any) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def _registry(version: str) -> Registry:
    definitions = _load(_BUILTIN / f"v{version}-local-strict" / "_definitions.json")
    return Registry().with_resource(definitions["$id"], Resource.from_contents(definitions))


@cache
def _validator(version: str, api_version: str, kind: str) -> Draft202012Validator:
    # kubernetes-validate's file naming: rbac.authorization.k8s.io/v1 Role -> role-rbac-v1.json
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    name = f"{kind.lower()}-{group_version}.json"
    crd = CRD_SCHEMAS / name
    path = crd if crd.is_file() else _BUILTIN / f"v{version}-local-strict" / name
    return Draft202012Validator(_load(path), registry=_registry(version))


def schema_errors(obj: dict[str, Any], version: str) -> list[str]:
    """Every way `obj` breaks the schema of its kind in Kubernetes `version` (empty when valid)."""
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    validator = _validator(version, obj["apiVersion"], obj["kind"])
    return [f"{where} {'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
