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
from mlgit.policy.engine import PolicySet
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


def flat(text: str) -> str:
    """Output with rich's line wrapping undone, for substring assertions."""
    return " ".join(text.split())


def _check(repo: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["policy", "check", str(repo), *args])
    return result.exit_code, result.output


def _check_json(repo: Path, *args: str) -> tuple[int, dict]:
    """The JSON report from stdout (warnings about the config go to stderr)."""
    result = runner.invoke(app, ["policy", "check", str(repo), "--format", "json", *args])
    return result.exit_code, json.loads(result.stdout)


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
    assert "0 denied, 0 warning(s), 0 skipped (waived)" in output
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


def test_json_format(repo: Path, policies: PolicySet) -> None:
    _pin_tag(repo)
    code, report = _check_json(repo)
    assert code == 3
    assert report["ok"] is False
    assert report["summary"]["deny"] == 2
    assert {f["environment"] for f in report["findings"]} == {"staging", "prod"}
    finding = report["findings"][0]
    assert finding["policy"] == "MLGIT-IMG-002"
    assert finding["resource"]["kind"] == "Deployment"
    assert finding["remediation"]
    assert len(report["summary"]["policies"]) == len(policies.policies)


def test_junit_format_to_file(repo: Path, tmp_path: Path, policies: PolicySet) -> None:
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
    assert prod.get("tests") == str(len(policies.policies))
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
    assert "SKIP   MLGIT-IMG-002" in output
    assert f"skipped: waived until {tomorrow}: staging runs the nightly tag" in output
    assert "DENY   MLGIT-IMG-002  Deployment linear-prod/linear" in output
    assert "waiver expired on 2020-01-01 and no longer applies" in output
    assert "1 denied, 0 warning(s), 1 skipped (waived)" in output


def test_the_repository_cannot_turn_its_own_denies_into_warnings(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`policy.mode: warn` in mlgit.yaml applies only where the platform allows it."""
    _pin_tag(repo)
    _configure(repo, "policy:\n  mode: warn\n")
    code, output = _check(repo)
    assert code == 3, output
    assert "2 denied, 0 warning(s)" in output
    assert "policy.mode warn in mlgit.yaml does not apply" in flat(output)
    assert "MLGIT_POLICY_ALLOW_WARN=true" in flat(output)
    monkeypatch.setenv("MLGIT_POLICY_ALLOW_WARN", "true")
    code, output = _check(repo)
    assert code == 0, output
    assert "0 denied, 2 warning(s)" in output
    assert "policy.mode is warn (allowed by MLGIT_POLICY_ALLOW_WARN)" in flat(output)
    assert _check(repo, "--strict")[0] == 3
    assert _check(repo, "--no-allow-warn")[0] == 3  # the flag wins over the environment
    monkeypatch.delenv("MLGIT_POLICY_ALLOW_WARN")
    assert _check(repo, "--allow-warn")[0] == 0


def test_the_repository_cannot_widen_the_platforms_registries(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mlgit.yaml allowing another registry lets its image through, unless the platform's list says no."""
    image = f"docker.io/someone/linear@{DIGEST}"
    _configure(repo, f"policy:\n  allowed_registries: [{_image(repo).split('/')[0]}, docker.io]\n")
    code, output = _check(repo, "--env", "prod", "--image", image)
    assert code == 0 and "MLGIT-IMG-003" not in output, output
    monkeypatch.setenv("MLGIT_ALLOWED_REGISTRIES", "registry.example.com")
    code, output = _check(repo, "--env", "prod", "--image", image)
    assert code == 3, output
    assert "DENY   MLGIT-IMG-003" in output and "which is not an allowed registry (registry.example.com)" in flat(
        output
    )
    assert "mlgit.yaml allows registry docker.io, which the platform's list does not" in flat(output)
    code, output = _check(repo, "--env", "prod", "--image", image, "--allowed-registry", "docker.io/someone")
    assert code == 0, output  # the flag wins over the environment, and narrows docker.io to docker.io/someone


def _waive_tags_everywhere(repo: Path, expires: dt.date) -> None:
    """The waiver of the report: every resource, every environment, image digests off."""
    _pin_tag(repo)
    _configure(
        repo,
        f"""policy:
  waivers:
    - policy: MLGIT-IMG-002
      resource: "*"
      reason: tags are fine for now, we will pin digests later
      expires: {expires}
""",
    )


def test_a_waiver_expiring_too_far_ahead_waives_nothing(repo: Path) -> None:
    _waive_tags_everywhere(repo, dt.date(9999, 12, 31))
    code, output = _check(repo)
    assert code == 3, output
    assert "DENY   MLGIT-IMG-002  Deployment linear-staging/linear" in output
    latest = dt.date.today() + dt.timedelta(days=90)
    assert f"waiver until 9999-12-31 refused: it may expire at most 90 days ahead ({latest}" in output
    assert "MLGIT_WAIVER_MAX_DAYS" in output
    assert "2 denied, 0 warning(s), 0 skipped (waived)" in output


def test_the_limit_comes_from_the_environment_or_the_flag_never_from_the_repository(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    far = dt.date.today() + dt.timedelta(days=400)
    _waive_tags_everywhere(repo, far)
    assert _check(repo)[0] == 3
    monkeypatch.setenv("MLGIT_WAIVER_MAX_DAYS", "365")
    code, output = _check(repo)
    assert code == 3 and "limit from MLGIT_WAIVER_MAX_DAYS" in output
    monkeypatch.setenv("MLGIT_WAIVER_MAX_DAYS", "400")
    code, output = _check(repo)
    assert code == 0, output
    assert "2 skipped (waived)" in output
    code, output = _check(repo, "--waiver-max-days", "30")  # the flag wins over the environment
    assert code == 3 and "at most 30 days ahead" in output and "limit from --waiver-max-days" in output
    monkeypatch.setenv("MLGIT_WAIVER_MAX_DAYS", "ninety")
    code, output = _check(repo)
    assert code == 2 and "MLGIT_WAIVER_MAX_DAYS is 'ninety', not a number of days" in output


def test_waived_findings_are_reported_as_skipped_with_their_reason(repo: Path, tmp_path: Path) -> None:
    expires = dt.date.today() + dt.timedelta(days=30)
    _waive_tags_everywhere(repo, expires)
    code, report = _check_json(repo)
    assert code == 0, report
    assert report["summary"]["skipped"] == 2 and report["summary"]["deny"] == 0
    skipped = [f for f in report["findings"] if f["policy"] == "MLGIT-IMG-002"]
    reason = f"waived until {expires}: tags are fine for now, we will pin digests later"
    assert [(f["status"], f["reason"]) for f in skipped] == [("skipped", reason)] * 2
    target = tmp_path / "policy.xml"
    code, _ = _check(repo, "--format", "junit", "--output", str(target))
    assert code == 0
    suites = ET.parse(target).getroot()
    assert (suites.get("failures"), suites.get("skipped")) == ("0", "2")
    staging = next(s for s in suites if s.get("name") == "policy staging")
    assert staging.get("skipped") == "1"
    (case,) = [c for c in staging if c.find("skipped") is not None]
    assert case.get("name", "").startswith("MLGIT-IMG-002")
    assert case.find("skipped").get("message") == f"1 finding(s) {reason}"
    assert "not pinned by digest" in (case.find("skipped").text or "")


def test_extra_dirs_stay_inside_the_repository(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "always.rego").write_text(TEAM_WARN, encoding="utf-8")
    _configure(repo, f"policy:\n  extra_dirs: [{outside}]\n")
    code, output = _check(repo, "--env", "dev")
    assert code == 1, output
    assert "policy.extra_dirs" in output and "inside the repository" in output
    (repo / "mlgit.yaml").write_text(
        (repo / "mlgit.yaml").read_text(encoding="utf-8").replace(str(outside), "../elsewhere"), encoding="utf-8"
    )
    code, output = _check(repo, "--env", "dev")
    assert code == 1 and "policy.extra_dirs" in output, output
    (repo / "linked").symlink_to(outside)  # a folder inside that leads outside
    (repo / "mlgit.yaml").write_text(
        (repo / "mlgit.yaml").read_text(encoding="utf-8").replace("../elsewhere", "linked"), encoding="utf-8"
    )
    code, output = _check(repo, "--env", "dev")
    assert code == 1, output
    assert f"policy.extra_dirs: linked leads to {outside.resolve()}, outside the repository" in flat(output)
    assert "MLGIT_POLICY_DIRS" in flat(output)


def test_a_platform_folder_comes_in_through_the_environment_or_the_flag(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = tmp_path / "platform-policies"
    platform.mkdir()
    (platform / "always.rego").write_text(TEAM_WARN, encoding="utf-8")
    monkeypatch.setenv("MLGIT_POLICY_DIRS", str(platform))
    code, output = _check(repo, "--env", "dev")
    assert code == 0 and "WARN   TEAM-001" in output, output
    monkeypatch.delenv("MLGIT_POLICY_DIRS")
    code, output = _check(repo, "--env", "dev", "--policy-dir", str(platform))
    assert code == 0 and "WARN   TEAM-001" in output, output
    code, output = _check(repo, "--env", "dev", "--policy-dir", str(tmp_path / "missing"))
    assert code == 1 and "platform policy folder" in output and "not found" in output
