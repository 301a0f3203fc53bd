"""Offline Kubernetes schema validation: kubernetes-validate's strict schemas for built-in kinds, and for
custom resources the openAPIV3Schema of the CRDs that tests/cluster/crds.sh generates from each project's
Go API types (the same files the test control plane installs).

One cached Draft 2020-12 validator per (Kubernetes version, apiVersion, kind), reporting every error
(kubernetes-validate's own validate() reloads the definitions per call and stops at the first error).

How strict a CRD schema is here, and why: the API server prunes fields a structural schema does not
declare, and kubectl (--validate=strict, its default) and server-side apply with fieldValidation=Strict
turn each pruned field into an error. So every object of the schema's skeleton (properties, items,
additionalProperties) that neither declares additionalProperties nor x-kubernetes-preserve-unknown-fields
gets additionalProperties: false, and metadata is checked as the version's ObjectMeta. Value checks kept:
type (with nullable and x-kubernetes-int-or-string), enum, pattern, lengths, bounds, required, item and
property counts, allOf/anyOf/oneOf/not, and x-kubernetes-list-type: set as uniqueItems. Not checked here:
CEL rules (x-kubernetes-validations), string formats and list-map key uniqueness; the server-side dry run
against the real API server checks those.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

KUBERNETES_VERSIONS = ("1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0", "1.35.0")
CRDS_ENV = "MLGIT_TEST_CRDS"
CRDS_COMMAND = 'eval "$(bash tests/cluster/crds.sh | tail -1)"'
_BUILTIN = resources.files("kubernetes_validate") / "kubernetes-json-schema"
_OBJECT_META = "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# Keywords whose meaning is the same in OpenAPI v3 and JSON Schema 2020-12.
_VALUE_KEYWORDS = (
    "enum", "pattern", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties", "required",
)  # fmt: skip


def _load(path: Any) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def _definitions(version: str) -> dict[str, Any]:
    return _load(_BUILTIN / f"v{version}-local-strict" / "_definitions.json")


@cache
def _registry(version: str) -> Registry:
    definitions = _definitions(version)
    return Registry().with_resource(definitions["$id"], Resource.from_contents(definitions))


def _builtin_schema(version: str, api_version: str, kind: str) -> Any:
    # kubernetes-validate's file naming: rbac.authorization.k8s.io/v1 Role -> role-rbac-v1.json
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return _BUILTIN / f"v{version}-local-strict" / f"{kind.lower()}-{group_version}.json"


def is_builtin(obj: dict[str, Any], version: str) -> bool:
    """True when `obj` is of a kind Kubernetes `version` serves itself (no CRD needed)."""
    return _builtin_schema(version, obj["apiVersion"], obj["kind"]).is_file()


@cache
def _builtin_validator(version: str, api_version: str, kind: str) -> Draft202012Validator:
    schema = _load(_builtin_schema(version, api_version, kind))
    return Draft202012Validator(schema, registry=_registry(version))


def _errors(validator: Draft202012Validator, obj: dict[str, Any]) -> list[str]:
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    return [f"{where} {'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]


def builtin_errors(obj: dict[str, Any], version: str) -> list[str]:
    """Every way `obj`, of a built-in kind, breaks its schema in Kubernetes `version` (empty when valid)."""
    return _errors(_builtin_validator(version, obj["apiVersion"], obj["kind"]), obj)


def json_schema(node: dict[str, Any], *, skeleton: bool = True) -> dict[str, Any]:
    """The JSON Schema that checks what the API server checks of a CRD's structural `node` (see above).

    `skeleton` is False inside allOf/anyOf/oneOf/not: those only constrain values, and a branch naming a
    few properties must not forbid the others.
    """
    out: dict[str, Any] = {key: node[key] for key in _VALUE_KEYWORDS if key in node}
    kind = node.get("type")
    if node.get("x-kubernetes-int-or-string"):
        kind = ["integer", "string"]
    if kind is not None:
        types = kind if isinstance(kind, list) else [kind]
        out["type"] = [*types, "null"] if node.get("nullable") else types
    if node.get("nullable") and "enum" in out:
        out["enum"] = [*out["enum"], None]
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if "properties" in node:
        out["properties"] = {name: json_schema(child, skeleton=skeleton) for name, child in node["properties"].items()}
    if "items" in node:
        out["items"] = json_schema(node["items"], skeleton=skeleton)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out["additionalProperties"] = json_schema(extra, skeleton=skeleton)
    elif extra is not None:
        out["additionalProperties"] = extra
    elif skeleton and kind == "object" and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False  # pruned by the API server, an error under strict validation
    for junctor in ("allOf", "anyOf", "oneOf"):
        if node.get(junctor) is not None:  # openshift/api's Route CRD writes `anyOf: null`
            out[junctor] = [json_schema(branch, skeleton=False) for branch in node[junctor]]
    if "not" in node:
        out["not"] = json_schema(node["not"], skeleton=False)
    return out


class CrdSchemas:
    """The schemas of the served versions of the CRDs (YAML files) in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._schemas: dict[tuple[str, str], dict[str, Any]] = {}
        self._unserved: set[tuple[str, str]] = set()
        for crd in _crds(directory):
            spec = crd["spec"]
            for served in spec["versions"]:
                key = (f"{spec['group']}/{served['name']}", spec["names"]["kind"])
                if served.get("served", True):
                    self._schemas[key] = served["schema"]["openAPIV3Schema"]
                else:
                    self._unserved.add(key)
        if not self._schemas:
            raise FileNotFoundError(f"no CustomResourceDefinition in {directory}")
        self._validators: dict[tuple[str, str, str], Draft202012Validator] = {}

    def kinds(self) -> set[tuple[str, str]]:
        """(apiVersion, kind) of every served custom resource version."""
        return set(self._schemas)

    def schema(self, api_version: str, kind: str, version: str) -> dict[str, Any]:
        """The JSON Schema of one served custom resource version, with Kubernetes `version`'s ObjectMeta."""
        key = (api_version, kind)
        if key not in self._schemas:
            served = "defined but not served" if key in self._unserved else "not defined"
            raise KeyError(f"{kind} {api_version} is {served} by the CRDs in {self.directory}")
        schema = json_schema(self._schemas[key])
        schema["properties"]["apiVersion"] = {"const": api_version}
        schema["properties"]["kind"] = {"const": kind}
        schema["properties"]["metadata"] = {"$ref": _definitions(version)["$id"] + _OBJECT_META}
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
        return schema

    def errors(self, obj: dict[str, Any], version: str) -> list[str]:
        """Every way custom resource `obj` breaks its CRD's schema, metadata as in Kubernetes `version`."""
        key = (version, obj["apiVersion"], obj["kind"])
        if key not in self._validators:
            try:
                schema = self.schema(obj["apiVersion"], obj["kind"], version)
            except KeyError as missing:
                return [f"{obj['kind']}/{obj.get('metadata', {}).get('name')}: {missing.args[0]}"]
            self._validators[key] = Draft202012Validator(schema, registry=_registry(version))
        return _errors(self._validators[key], obj)


def _crds(directory: Path) -> Iterator[dict[str, Any]]:
    # PyYAML's libyaml loader: 0.4 s for the 2.3 MB of CRDs, where pure-Python ruamel.yaml takes 7 s.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in sorted(directory.glob("*.yaml")):
        for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                yield doc


def schema_errors(obj: dict[str, Any], version: str, crds: CrdSchemas) -> list[str]:
    """Every way `obj` breaks the schema of its kind in Kubernetes `version` (empty when valid)."""
    return builtin_errors(obj, version) if is_builtin(obj, version) else crds.errors(obj, version)
