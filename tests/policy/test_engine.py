"""The regopy wrapper and the Python halves of the check: errors, results, extends, waivers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from mlgit.config.schema import PolicyConfig, Waiver
from mlgit.errors import MlgitError
from mlgit.policy import report, waivers
from mlgit.policy.check import evaluate
from mlgit.policy.engine import PolicySet
from mlgit.policy.inputs import PolicyInput
from mlgit.policy.pipeline import resolve_extends
from mlgit.policy.settings import PlatformSettings
from tests.policy import environments


def _policies(tmp_path: Path, source: str) -> PolicySet:
    (tmp_path / "team.rego").write_text(source, encoding="utf-8")
    return PolicySet([tmp_path])


def test_v0_partial_rule_is_refused_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(MlgitError) as error:
        _policies(tmp_path, 'package team\n\ndeny[msg] {\n\tmsg := "x"\n}\n')
    assert error.value.location is not None and error.value.location.line == 3
    assert "deny contains msg if" in (error.value.hint or "")


def test_unknown_function_is_reported_with_file_and_line(tmp_path: Path) -> None:
    policies = _policies(tmp_path, "package team\n\ndeny contains msg if {\n\tmsg := nosuch(input.x)\n}\n")
    with pytest.raises(MlgitError) as error:
        policies.evaluate({"x": 1})
    assert "Function not found: nosuch" in error.value.message
    assert str(error.value.location) == f"{tmp_path / 'team.rego'}:4"


def test_messages_keep_quotes_and_newlines_from_the_input(tmp_path: Path) -> None:
    # rego-cpp's JSON output leaves these unescaped: results are read from its node tree.
    policies = _policies(
        tmp_path, 'package team\n\nwarn contains {"msg": input.m, "resource": {"name": "x"}} if true\n'
    )
    text = 'rule `if: $CI_COMMIT_BRANCH == "hotfix"`\nsecond line \\ end'
    [violation] = policies.evaluate({"m": text})
    assert violation.message == text
    assert violation.severity == "warn"
    assert violation.policy.id == "team"


def test_string_results_and_metadata_defaults(tmp_path: Path) -> None:
    policies = _policies(tmp_path, 'package team\n\ndeny_replicas contains "too few" if input.replicas < 2\n')
    [violation] = policies.evaluate({"replicas": 1})
    assert (violation.message, violation.resource, violation.severity) == ("too few", None, "deny")
    assert policies.evaluate({"replicas": 3}) == []


def test_extends_merge_like_gitlab() -> None:
    doc = {
        ".deploy": {"script": ["a"], "environment": {"name": "x", "action": "start"}, "rules": [{"if": "1"}]},
        ".manual": {"rules": [{"if": "2", "when": "manual"}]},
        "deploy-prod": {"extends": [".deploy", ".manual", ".from-component"], "environment": {"name": "prod"}},
    }
    jobs, unknown = resolve_extends(doc)
    assert jobs["deploy-prod"] == {
        "script": ["a"],
        "environment": {"name": "prod", "action": "start"},
        "rules": [{"if": "2", "when": "manual"}],
    }
    assert unknown == [".from-component"]


def test_extends_loop_is_an_error() -> None:
    with pytest.raises(MlgitError, match="loops"):
        resolve_extends({".a": {"extends": ".b"}, ".b": {"extends": ".a"}})


def test_waiver_matching() -> None:
    waiver = Waiver(
        policy="MLGIT-SEC-001",
        resource="Deployment/*",
        environment="staging",
        reason="debug sidecar until Friday",
        expires=dt.date(2030, 1, 1),
    )
    deployment = {"kind": "Deployment", "namespace": "m-staging", "name": "m"}
    assert waivers.matches(waiver, "MLGIT-SEC-001", "staging", deployment)
    assert not waivers.matches(waiver, "MLGIT-SEC-001", "prod", deployment)
    assert not waivers.matches(waiver, "MLGIT-SEC-002", "staging", deployment)
    assert not waivers.matches(waiver, "MLGIT-SEC-001", "staging", {**deployment, "kind": "Service"})
    scoped = waiver.model_copy(update={"resource": "Deployment/m-staging/m"})
    assert waivers.matches(scoped, "MLGIT-SEC-001", "staging", deployment)
    assert not waivers.expired(waiver, dt.date(2030, 1, 1))
    assert waivers.expired(waiver, dt.date(2030, 1, 2))


def test_findings_are_named_after_their_input_document(policies: PolicySet) -> None:
    """A finding is of one PolicyInput (an environment, review or the pipeline), and so is a waiver's
    `environment`; the reports keep their documented keys (`environment`, `environments`)."""
    document = environments.pipeline()
    del document["pipeline"]["deploy-prod"]["environment"]["on_stop"]
    waiver = Waiver(
        policy="MLGIT-CI-001", environment="pipeline", reason="stopped by hand for now", expires=dt.date(2030, 1, 1)
    )
    assert waivers.matches(waiver, "MLGIT-CI-001", input_name="pipeline", resource=None)
    config = PolicyConfig(waivers=[waiver])
    result = evaluate(policies, [PolicyInput("pipeline", document)], config, dt.date(2029, 12, 1), PlatformSettings())
    assert result.input_names == ["pipeline"]
    (finding,) = result.findings
    assert (finding.input_name, finding.policy.id, finding.status) == ("pipeline", "MLGIT-CI-001", "skipped")
    as_json = json.loads(report.as_json(result, strict=False))
    assert as_json["summary"]["environments"] == ["pipeline"]
    assert as_json["findings"][0]["environment"] == "pipeline"
