"""Rego in-process with regopy: load policy folders, compile them once, evaluate input documents.

regopy traps this module works around (see /work/shared/ENVIRONMENT.md): parse errors are printed
on stdout by the C library unless the log level is NONE; its JSON output does not escape quotes or
newlines inside strings (so results are read from the node tree instead); a runtime error comes back
as an "(error ...)" text rather than an exception; there is no `rego.metadata`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regopy import Interpreter, LogLevel, Node, NodeKind, RegoError
from regopy.rego_shared import (
    rego_bundle_query,
    rego_free_output,
    rego_node_get,
    rego_output_node,
    rego_output_ok,
    rego_output_string,
    rego_query,
)

from mlgit.errors import Location, MlgitError
from mlgit.policy.metadata import PolicyInfo, Severity, read_policy, rule_severity

_ERROR_HEAD = re.compile(r"\(error (\d+):")
_ERROR_AT = re.compile(r"\|(\d+)\|(\d+)")
_ERROR_MSG = re.compile(r"\(errormsg (\d+):")
_FUNCTION_NOT_FOUND = re.compile(r"Function not found: (\S+)")


@dataclass(frozen=True)
class Violation:
    """One deny/warn result of one policy for one input document."""

    policy: PolicyInfo
    severity: Severity
    message: str
    resource: dict[str, str] | None


def _unquoted(text: str) -> str:
    """rego-cpp hands back a string containing a double quote JSON-encoded, quotes and all."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            decoded = json.loads(text)
        except json.JSONDecodeError:
            return text
        return decoded if isinstance(decoded, str) else text
    return text


def _python(node: Node) -> Any:
    """A result node as Python data (strings exactly as Rego holds them)."""
    kind = node.kind
    if kind in (NodeKind.Term, NodeKind.Scalar):
        return _python(node.at(0))
    if kind == NodeKind.String:
        return _unquoted(node.value)
    if kind in Node.ValueKinds:
        return node.value
    if kind in (NodeKind.True_, NodeKind.False_):
        return kind == NodeKind.True_
    if kind == NodeKind.Object:
        # ObjectItem (key, value) pairs, read directly: regopy indexes objects by their broken JSON keys.
        items = (Node(rego_node_get(node._impl, i)) for i in range(len(node)))
        return {str(_python(item.at(0))): _python(item.at(1)) for item in items}
    if kind in (NodeKind.Array, NodeKind.Set):
        return [_python(Node(rego_node_get(node._impl, i))) for i in range(len(node))]
    raise ValueError(f"unexpected Rego result node {node.kind_name}")


def _interpreter() -> Interpreter:
    rego = Interpreter()
    rego.log_level = LogLevel.NONE  # otherwise rego-cpp prints parse errors on stdout
    return rego


def _length_prefixed(text: str, match: re.Match[str]) -> str:
    return text[match.end() : match.end() + int(match.group(1))]


def _compile_errors(error: RegoError, sources: dict[str, tuple[Path, str]]) -> list[str]:
    """rego-cpp's error sequence -> "file:line:col: message", the earliest position of each file first."""
    text = str(error)
    problems = []
    for head in _ERROR_HEAD.finditer(text):
        name = _length_prefixed(text, head)
        rest = text[head.end() + len(name) :]
        message_at = _ERROR_MSG.search(rest)
        message = _length_prefixed(rest, message_at) if message_at else "invalid Rego"
        where = _ERROR_AT.match(rest)
        if name in sources and where:
            path, source = sources[name]
            before = source.encode("utf-8")[: int(where.group(1))].decode("utf-8", "replace")
            line = before.count("\n") + 1
            column = len(before) - (before.rfind("\n") + 1) + 1
            problems.append(f"{path}:{line}:{column}: {message}")
        else:
            problems.append(f"{name or 'policy'}: {message}")
    return problems or [text.strip()]


def _rego_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise MlgitError(f"policy folder {directory} not found", "fix policy.extra_dirs in mlgit.yaml")
    # OPA's own tests (*_test.rego) are not policies; mlgit drives its tests from fixture data.
    return sorted(p for p in directory.rglob("*.rego") if not p.name.endswith("_test.rego"))


class PolicySet:
    """Policies compiled once into a regopy bundle; `evaluate` runs all of them over one document."""

    def __init__(self, directories: Sequence[Path]) -> None:
        self._compiler = _interpreter()
        sources: dict[str, tuple[Path, str]] = {}
        policies: dict[str, PolicyInfo] = {}
        for directory in directories:
            for path in _rego_files(directory):
                source = path.read_text(encoding="utf-8")
                sources[str(path)] = (path, source)
                info = read_policy(path, source)
                known = policies.get(info.package)
                if known is not None and known.rules and info.rules:
                    raise MlgitError(
                        f"package {info.package} has deny/warn rules in both {known.path} and {path}",
                        "keep one concern (one package) per file",
                    )
                if known is None or info.rules:
                    policies[info.package] = info
        try:
            for name, (_, source) in sources.items():
                self._compiler.add_module(name, source)
            self._queries = {
                f"{info.package}.{rule}": f"[v | v := data.{info.package}.{rule}]"
                for info in policies.values()
                for rule in info.rules
            }
            self._bundle = self._compiler.build(
                "x := {" + ", ".join(f'"{key}": {query}' for key, query in self._queries.items()) + "}", []
            )
        except RegoError as error:
            raise MlgitError(
                "a policy does not compile",
                "fix the Rego at the position above (mlgit reads Rego v1: `deny contains msg if { ... }`)",
                problems=_compile_errors(error, sources),
            ) from None
        self.policies = sorted((p for p in policies.values() if p.rules), key=lambda p: p.id)
        self._by_package = {p.package: p for p in self.policies}
        self._runner = _interpreter()

    def evaluate(self, document: dict[str, Any]) -> list[Violation]:
        """Every deny/warn result of every policy for `document` (an input document, see inputs.py)."""
        self._runner.set_input(document)
        output = rego_bundle_query(self._runner._impl, self._bundle._impl)
        try:
            root = Node(rego_output_node(output))
            failed = not rego_output_ok(output) or root.kind != NodeKind.Results
            # Results > Result > (expressions, bindings) > binding x > (var, value)
            results = {} if failed or len(root) == 0 else _python(root.at(0).at(1).at(0).at(1))
        finally:
            rego_free_output(output)
        if failed:
            raise self._diagnose(document)
        violations = []
        for key, wrapped in results.items():
            package, rule = key.rsplit(".", 1)
            policy = self._by_package[package]
            for value in wrapped:
                for item in value if isinstance(value, list) else [value]:
                    violations.append(self._violation(policy, rule, item))
        return violations

    def _violation(self, policy: PolicyInfo, rule: str, item: Any) -> Violation:
        if isinstance(item, dict) and isinstance(item.get("msg"), str):
            resource = item.get("resource")
            return Violation(policy, rule_severity(rule), item["msg"], resource if isinstance(resource, dict) else None)
        if isinstance(item, str):
            return Violation(policy, rule_severity(rule), item, None)
        raise MlgitError(
            f"{policy.path}: rule {rule} produced {json.dumps(item)[:200]}",
            'a deny/warn result is a message string or an object with a "msg" string',
        )

    def _diagnose(self, document: dict[str, Any]) -> MlgitError:
        """Find which policy failed at run time: rerun each rule alone, reading rego-cpp's error text."""
        self._compiler.set_input(document)
        for key, query in self._queries.items():
            output = rego_query(self._compiler._impl, f"x := {query}")
            try:
                text = rego_output_string(output)
            finally:
                rego_free_output(output)
            if text.startswith("(error"):
                package = key.rsplit(".", 1)[0]
                policy = self._by_package[package]
                message_at = _ERROR_MSG.search(text)
                message = _length_prefixed(text, message_at) if message_at else text.strip()
                line = None
                missing = _FUNCTION_NOT_FOUND.search(message)
                if missing:
                    source = policy.path.read_text(encoding="utf-8")
                    at = source.find(missing.group(1) + "(")
                    line = source.count("\n", 0, at) + 1 if at >= 0 else None
                return MlgitError(f"policy {policy.id} failed: {message}", location=Location(policy.path, line))
        return MlgitError("policy evaluation failed and no single policy reproduces it")
