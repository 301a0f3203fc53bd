"""The platform team's settings: from a flag, else the environment, else the default; and what mlgit.yaml
says about the same things only makes the check stricter."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgit.config.load import load_project
from mlgit.errors import ExitCode, MlgitError
from mlgit.policy.inputs import allowed, context
from mlgit.policy.settings import (
    PlatformList,
    PlatformSettings,
    domain_within,
    narrow,
    platform_settings,
    registry_within,
)


def test_warn_mode_applies_only_where_the_platform_allows_it() -> None:
    assert PlatformSettings().mode("warn") == "enforce"
    assert PlatformSettings(allow_warn=True).mode("warn") == "warn"
    assert PlatformSettings(allow_warn=True).mode("enforce") == "enforce"  # stricter is always allowed


def test_allow_warn_comes_from_the_flag_else_the_environment_else_no() -> None:
    assert platform_settings({}).allow_warn is False
    settings = platform_settings({"MLGIT_POLICY_ALLOW_WARN": "True"})
    assert (settings.allow_warn, settings.allow_warn_source) == (True, "MLGIT_POLICY_ALLOW_WARN")
    assert platform_settings({"MLGIT_POLICY_ALLOW_WARN": "0"}).allow_warn is False
    settings = platform_settings({"MLGIT_POLICY_ALLOW_WARN": "true"}, allow_warn=False)
    assert (settings.allow_warn, settings.allow_warn_source) == (False, "--no-allow-warn")
    with pytest.raises(MlgitError, match="MLGIT_POLICY_ALLOW_WARN is 'maybe', not true or false") as error:
        platform_settings({"MLGIT_POLICY_ALLOW_WARN": "maybe"})
    assert error.value.exit_code == ExitCode.USAGE


def test_platform_lists_come_from_the_flag_else_the_environment() -> None:
    environ = {"MLGIT_ALLOWED_REGISTRIES": " registry.gitlab.com, quay.io/team\nghcr.io ", "MLGIT_ALLOWED_DOMAINS": ""}
    settings = platform_settings(environ)
    assert settings.allowed_registries == PlatformList(
        ("registry.gitlab.com", "quay.io/team", "ghcr.io"), "MLGIT_ALLOWED_REGISTRIES"
    )
    assert settings.allowed_domains is None and settings.allowed_issuers is None  # empty or unset: no list
    flagged = platform_settings(environ, allowed_registries=["r.example.com"], allowed_issuers=["corp-ca"])
    assert flagged.allowed_registries == PlatformList(("r.example.com",), "--allowed-registry")
    assert flagged.allowed_issuers == PlatformList(("corp-ca",), "--allowed-issuer")


def test_narrowing_never_widens() -> None:
    platform = PlatformList(("registry.gitlab.com", "quay.io/team"), "MLGIT_ALLOWED_REGISTRIES")
    own = ["registry.gitlab.com/ml", "docker.io", "quay.io"]
    # Inside the platform's list: kept; wider than a platform entry: that entry instead; outside: dropped.
    kept, changed = narrow(own, platform, registry_within)
    assert kept == ["registry.gitlab.com/ml", "quay.io/team"]
    assert changed == [("docker.io", []), ("quay.io", ["quay.io/team"])]
    assert narrow(own, None, registry_within) == (own, [])
    assert narrow(["example.com"], PlatformList(("models.example.com",), "x"), domain_within)[0] == [
        "models.example.com"
    ]
    assert narrow(["evil.com"], PlatformList(("example.com",), "x"), domain_within)[0] == []


def _allow(repo: Path, registries: list[str], issuers: list[str]) -> None:
    with (repo / "mlgit.yaml").open("a", encoding="utf-8") as handle:
        handle.write(f"\npolicy:\n  allowed_registries: {registries}\n  allowed_issuers: {issuers}\n")


def test_the_context_holds_the_repositorys_lists_narrowed_to_the_platforms(model_repo: Path) -> None:
    _allow(model_repo, ["registry.example.com", "docker.io"], ["letsencrypt-prod", "selfsigned"])
    project = load_project(model_repo)
    own = context(project, "prod")
    assert (own["allowed_registries"], own["allowed_issuers"]) == (
        ["registry.example.com", "docker.io"],
        ["letsencrypt-prod", "selfsigned"],
    )
    platform = platform_settings({
        "MLGIT_ALLOWED_REGISTRIES": "registry.example.com",
        "MLGIT_ALLOWED_ISSUERS": "letsencrypt-prod",
        "MLGIT_ALLOWED_DOMAINS": "other.org",
    })  # fmt: skip
    narrowed = context(project, "prod", platform)
    assert narrowed["allowed_registries"] == ["registry.example.com"]
    assert narrowed["allowed_issuers"] == ["letsencrypt-prod"]
    assert narrowed["allowed_domains"] == []  # models.example.com is not inside other.org: no host is allowed
    notes = allowed(project.config, platform).notes
    assert any("registry docker.io" in n and "MLGIT_ALLOWED_REGISTRIES: registry.example.com" in n for n in notes)
    assert any("issuer selfsigned" in n for n in notes) and any("domain models.example.com" in n for n in notes)
