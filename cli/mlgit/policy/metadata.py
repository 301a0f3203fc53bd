"""What a .rego file declares, read from its source: package, METADATA annotations, rule names.

regopy has no `rego.metadata` built-ins, so the OPA METADATA block (YAML in comments before
`package`) is parsed here; OPA, conftest and Regal read the very same block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from mlgit.errors import Location, MlgitError

Severity = Literal["deny", "warn"]

_PACKAGE = re.compile(r"^package[ \t]+(\S+)", re.MULTILINE)
_PACKAGE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# conftest's rule names: deny, violation and warn, each optionally suffixed with _<identifier>.
_RULE = re.compile(r"^((?:deny|violation|warn)(?:_[A-Za-z0-9]+)*)\b(.*)$", re.MULTILINE)
# `deny[msg] {` (v0) or `deny[msg] if {` (v1 ref head): an object of messages, not a set.
_OBJECT_HEAD = re.compile(r"^\s*\[")


@dataclass(frozen=True)
class PolicyInfo:
    """One policy: a Rego package with its annotations."""

    id: str
    title: str
    severity: Severity
    description: str
    remediation: str
    package: str
    path: Path
    rules: tuple[str, ...]


def rule_severity(rule: str) -> Severity:
    return "warn" if rule.startswith("warn") else "deny"


def _line_of(source: str, offset: int) -> int:
    return source.count("\n", 0, offset) + 1


def _annotations(source: str, package_at: int, path: Path) -> dict[str, Any]:
    lines = source[:package_at].splitlines()
    block: list[str] = []
    for line in reversed(lines):
        if not line.startswith("#"):
            break
        block.insert(0, line)
    try:
        start = next(i for i, line in enumerate(block) if line.strip() == "# METADATA")
    except StopIteration:
        return {}
    text = "\n".join(line[2:] if line.startswith("# ") else line[1:] for line in block[start + 1 :])
    try:
        data = YAML(typ="safe").load(text)
    except YAMLError as exc:
        line = _line_of(source, package_at) - len(block) + start + 1
        raise MlgitError(f"invalid METADATA block: {exc}", location=Location(path, line)) from None
    return data if isinstance(data, dict) else {}


def read_policy(path: Path, source: str) -> PolicyInfo:
    """The package, annotations and deny/warn rules of one .rego file."""
    match = _PACKAGE.search(source)
    if match is None:
        raise MlgitError("no package declaration", "start the file with `package <name>`", location=Location(path, 1))
    package = match.group(1)
    if not _PACKAGE_NAME.match(package):
        raise MlgitError(
            f"package {package} is not a dotted name",
            "mlgit evaluates packages named like team.models.gpu_quota",
            location=Location(path, _line_of(source, match.start())),
        )
    rules = []
    for rule in _RULE.finditer(source):
        if _OBJECT_HEAD.match(rule.group(2)):
            raise MlgitError(
                f"{rule.group(1)}[...] declares an object of messages (Rego v0 style); mlgit reads Rego v1 sets",
                f"write `{rule.group(1)} contains msg if {{ ... }}`",
                location=Location(path, _line_of(source, rule.start())),
            )
        rules.append(rule.group(1))
    meta = _annotations(source, match.start(), path)
    custom = meta.get("custom") or {}
    declared = custom.get("severity")
    severity: Severity = declared if declared in ("deny", "warn") else rule_severity(rules[0] if rules else "deny")
    return PolicyInfo(
        id=str(custom.get("id") or package),
        title=str(meta.get("title") or package),
        severity=severity,
        description=str(meta.get("description") or "").strip(),
        remediation=str(custom.get("remediation") or "").strip(),
        package=package,
        path=path,
        rules=tuple(dict.fromkeys(rules)),
    )
