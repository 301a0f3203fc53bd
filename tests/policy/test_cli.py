"""`mlgit policy check` end to end on a fresh model repository (kustomize builds its environments)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgit.main import app
from tests.policy.environments import DIGEST

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) is not installed")
runner = CliRunner()

TEAM_WARN = """# METADATA
# title: Team rule that always warns
# custom:
#   id: TEAM-001
#   severity: warn
package team.always

warn contains msg if {
\tsome r in input.resources
\tr.kind == "Service"
\tmsg := sprintf("Service %s: the team wants to know", [r.metadata.name])
}
"""


def _check(repo: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["policy", "check", str(repo), *args])
    return result.exit_code, result.output


def _configure(repo: Path, text: str) -> None:
    with (repo / "mlgit.yaml").open("a", encoding="utf-8") as handle:
        handle.write("\n" + text)


@pytest.fixture
def repo(model_repo: Path) -> Path:
    assert "\npolicy:" not in (model_repo / "mlgit.yaml").read_text(encoding="utf-8")
    return model_repo


def _image(repo: Path) -> str:
    from mlgit.config.load import load_project

    return f"{load_project(repo).config.image.repository}@{DIGEST}"


def test_happy_path(repo: Path, tmp_path: Path) -> None:
    code, output = _check(repo, "--image", _image(repo), "--save-inputs", str(tmp_path / "inputs"))
    assert code == 0, output
    assert "0 denied, 0 warning(s), 0 waived" in output
    assert "dev, staging, prod, review, pipeline" in output
    saved = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in (tmp_path / "inputs").glob("*.json")}
    assert set(saved) == {"dev", "staging", "prod", "review", "pipeline"}
    assert saved["prod"]["context"]["tier"] == "production"
    assert {r["kind"] for r in saved["prod"]["resources"]} >= {"Deployment", "Ingress", "NetworkPolicy"}
    assert "deploy-prod" in saved["pipeline"]["pipeline"]


def _pin_tag(repo: Path, tag: str = "nightly") -> None:
    """Pin a tag (not a digest) in staging and prod: what MLGIT-IMG-002 denies."""
    for env in ("staging", "prod"):
        pin = repo / "deploy" / "overlays" / env / "image" / "kustomization.yaml"
        pin.write_text(pin.read_text().replace("newTag: unpinned", f"newTag: {tag}"))


def test_fresh_repo_passes_with_a_warning_for_environments_not_promoted_yet(repo: Path) -> None:
    code, output = _check(repo)
    assert code == 0, output
    assert "MLGIT-IMG-004" in output and "MLGIT-IMG-002" not in output
    assert "staging\n  Deployment/" in output and "prod\n  Deployment/" in output


def test_a_tag_pinned_in_staging_is_denied(repo: Path) -> None:
    _pin_tag(repo, "1.4.0")
    code, output = _check(repo)
    assert code == 3, output
    assert "MLGIT-IMG-002" in output and "fix: Promote by digest" in output


def test_single_environment(repo: Path) -> None:
    code, output = _check(repo, "--env", "dev")
    assert code == 0, output
    assert "policies over dev (" in output


def test_env_and_all_exclude_each_other(repo: Path) -> None:
    code, output = _check(repo, "--env", "dev", "--all")
    assert code == 2
    assert "exclude each other" in output


def test_unknown_environment(repo: Path) -> None:
    code, output = _check(repo, "--env", "qa")
    assert code == 1
    assert "unknown environment 'qa'" in output


def test_team_warning_fails_only_with_strict(repo: Path) -> None:
    (repo / "team-policies").mkdir()
    (repo / "team-policies" / "always.rego").write_text(TEAM_WARN, encoding="utf-8")
    _configure(repo, "policy:\n  extra_dirs: [team-policies]\n")
    code, output = _check(repo, "--env", "dev")
    assert code == 0, output
    assert "WARN   TEAM-001" in output
    code, output = _check(repo, "--env", "dev", "--strict")
    assert code == 3, output


def test_syntax_error_in_team_policy_names_file_and_line(repo: Path) -> None:
    (repo / "team-policies").mkdir()
    broken = TEAM_WARN.replace("[r.metadata.name])", "[r.metadata.name]")
    (repo / "team-policies" / "broken.rego").write_text(broken, encoding="utf-8")
    _configure(repo, "policy:\n  extra_dirs: [team-policies]\n")
    code, output = _check(repo, "--env", "dev")
    assert code == 1, output
    assert f"{repo / 'team-policies' / 'broken.rego'}:11:" in output
    assert "Traceback" not in output


def test_json_format(repo: Path) -> None:
    _pin_tag(repo)
    code, output = _check(repo, "--format", "json")
    assert code == 3
    report = json.loads(output)
    assert report["ok"] is False
    assert report["summary"]["deny"] == 2
    assert {f["environment"] for f in report["findings"]} == {"staging", "prod"}
    finding = report["findings"][0]
    assert finding["policy"] == "MLGIT-IMG-002"
    assert finding["resource"]["kind"] == "Deployment"
    assert finding["remediation"]
    assert len(report["summary"]["policies"]) == 22


def test_junit_format_to_file(repo: Path, tmp_path: Path) -> None:
    _pin_tag(repo)
    target = tmp_path / "reports" / "policy.xml"
    code, output = _check(repo, "--format", "junit", "--output", str(target))
    assert code == 3
    assert "2 denied" in output
    suites = ET.parse(target).getroot()
    assert suites.tag == "testsuites"
    assert suites.get("failures") == "2"
    names = [s.get("name") for s in suites]
    assert names == ["policy dev", "policy staging", "policy prod", "policy review", "policy pipeline"]
    prod = suites[2]
    assert prod.get("tests") == "22"
    failures = [c for c in prod if c.find("failure") is not None]
    assert [c.get("name").split()[0] for c in failures] == ["MLGIT-IMG-002"]
    assert "not pinned by digest" in (failures[0].find("failure").text or "")


def test_waiver_applies_until_it_expires(repo: Path) -> None:
    _pin_tag(repo)
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    _configure(
        repo,
        f"""policy:
  waivers:
    - policy: MLGIT-IMG-002
      resource: Deployment/*
      environment: staging
      reason: staging runs the nightly tag until the digest promotion lands
      expires: {tomorrow}
    - policy: MLGIT-IMG-002
      resource: Deployment/linear-prod/linear
      environment: prod
      reason: an old exception that nobody renewed
      expires: 2020-01-01
""",
    )
    code, output = _check(repo)
    assert code == 3, output
    assert "WAIVED MLGIT-IMG-002" in output
    assert f"waived until {tomorrow}" in output
    assert "DENY   MLGIT-IMG-002  Deployment linear-prod/linear" in output
    assert "waiver expired on 2020-01-01 and no longer applies" in output
    assert "1 denied, 0 warning(s), 1 waived" in output


def test_warn_mode_turns_denies_into_warnings(repo: Path) -> None:
    _configure(repo, "policy:\n  mode: warn\n")
    code, output = _check(repo)
    assert code == 0, output
    assert "0 denied, 2 warning(s)" in output
    assert "policy.mode is warn" in output
    code, _ = _check(repo, "--strict")
    assert code == 3
