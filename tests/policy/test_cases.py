"""Every policy against its passing and failing fixture documents (tests/policy/cases/<id>/{pass,fail})."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from mlgit.policy.engine import PolicySet
from tests.policy import environments

CASES = Path(__file__).parent / "cases"


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and key in merged else value
    return merged


def _cases() -> list[Any]:
    return [
        pytest.param(policy.name, outcome, path, id=f"{policy.name}/{outcome}/{path.stem}")
        for policy in sorted(CASES.iterdir())
        for outcome in ("pass", "fail")
        for path in sorted((policy / outcome).glob("*.yaml"))
    ]


def _document(case: dict[str, Any]) -> dict[str, Any]:
    """The case's resources or pipeline, its context merged over a production context."""
    document = {"context": _merge(environments.context(), case.get("context", {}))}
    for key in ("resources", "pipeline"):
        if key in case:
            document[key] = case[key]
    return document


@pytest.mark.parametrize(("policy_id", "outcome", "path"), _cases())
def test_case(policies: PolicySet, policy_id: str, outcome: str, path: Path) -> None:
    case = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    found = [v for v in policies.evaluate(_document(case)) if v.policy.id == policy_id]
    if outcome == "pass":
        assert found == [], [v.message for v in found]
        return
    assert found, f"{policy_id} did not catch {path.name}"
    if "expect" in case:
        assert any(case["expect"] in v.message for v in found), [v.message for v in found]
    for violation in found:
        assert violation.resource and violation.resource["name"], "findings name their resource"


def test_every_policy_has_a_passing_and_a_failing_case(policies: PolicySet) -> None:
    for policy in policies.policies:
        for outcome in ("pass", "fail"):
            assert list((CASES / policy.id / outcome).glob("*.yaml")), f"{policy.id} has no {outcome} case"
    assert {p.name for p in CASES.iterdir()} == {p.id for p in policies.policies}


def test_every_policy_is_documented(policies: PolicySet) -> None:
    assert len(policies.policies) == 28
    for policy in policies.policies:
        assert policy.id.startswith("MLGIT-"), policy.path
        assert policy.title and policy.description and policy.remediation, policy.id
        # The severity the annotations declare is the rule the file defines.
        assert set(policy.rules) == {policy.severity}, policy.id
