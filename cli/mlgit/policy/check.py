"""`mlgit policy check` as plain functions: evaluate the input documents, apply waivers and mode, decide."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mlgit.config.load import Project
from mlgit.config.schema import PolicyConfig, Waiver
from mlgit.errors import Location, MlgitError
from mlgit.policy import waivers
from mlgit.policy.engine import PolicySet
from mlgit.policy.inputs import PolicyInput, allowed, environment_input, pipeline_input
from mlgit.policy.metadata import PolicyInfo, Severity
from mlgit.policy.settings import ALLOW_WARN_ENV, POLICY_DIRS_ENV, WAIVER_MAX_DAYS_ENV, PlatformSettings
from mlgit.resources import shipped_dir

# A waived finding is reported as skipped (JUnit <skipped>), never as passed: the check did not run for it.
Status = Literal["deny", "warn", "skipped"]


@dataclass(frozen=True)
class Finding:
    """One policy result about one resource (or job) of one input document, after waivers and mode."""

    input_name: str
    """The PolicyInput it is of: an environment, review or pipeline (what a waiver's `environment` names)."""
    policy: PolicyInfo
    severity: Severity
    message: str
    resource: dict[str, str] | None
    waiver: Waiver | None = None
    note: str | None = None

    @property
    def status(self) -> Status:
        return "skipped" if self.waiver is not None else self.severity

    @property
    def skip_reason(self) -> str | None:
        """Why a skipped finding was not enforced: its waiver's expiry and reason."""
        return f"waived until {self.waiver.expires}: {self.waiver.reason}" if self.waiver is not None else None

    @property
    def resource_name(self) -> str:
        """Kind/namespace/name, or the input's name for findings a policy did not attach to a resource."""
        names = waivers.resource_names(self.resource)
        return names[1] if names else f"({self.input_name})"


@dataclass
class CheckResult:
    input_names: list[str]
    """The input documents evaluated, in order (the reports' `environments`)."""
    policies: list[PolicyInfo]
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)
    compile_seconds: float = 0.0
    evaluate_seconds: float = 0.0

    def count(self, status: Status) -> int:
        return sum(1 for f in self.findings if f.status == status)

    def failed(self, strict: bool) -> bool:
        return self.count("deny") > 0 or (strict and self.count("warn") > 0)


def policy_dirs(project: Project, platform: PlatformSettings) -> list[Path]:
    """mlgit's policies, the platform team's folders, then the repository's own (`policy.extra_dirs`).

    The repository's folders must lie inside it (symlinks resolved): what a model repository's check
    evaluates is then in the repository; a platform team's folders come in through the pipeline instead.
    """
    for folder in platform.policy_dirs:
        if not folder.is_dir():
            raise MlgitError(
                f"platform policy folder {folder} not found ({POLICY_DIRS_ENV} or --policy-dir)",
                "fix the variable in the project's or group's CI/CD settings, or the --policy-dir option",
            )
    root = project.root.resolve()
    own = []
    for entry in project.config.policy.extra_dirs:
        folder = project.root / entry
        if not folder.resolve().is_relative_to(root):
            raise MlgitError(
                f"policy.extra_dirs: {entry} leads to {folder.resolve()}, outside the repository",
                f"keep the repository's policies inside it; a platform team's shared folder comes in through "
                f"{POLICY_DIRS_ENV} (a group CI/CD variable) or `mlgit policy check --policy-dir`",
                location=Location(project.config_path),
            )
        own.append(folder)
    return [shipped_dir("policies"), *platform.policy_dirs, *own]


def _refusal(waiver: Waiver, today: dt.date, platform: PlatformSettings) -> str:
    latest = waivers.latest_expiry(today, platform.waiver_max_days)
    return (
        f"waiver until {waiver.expires} refused: it may expire at most {platform.waiver_max_days} days ahead "
        f"({latest}; limit from {platform.waiver_max_days_source}); shorten `expires`, or ask the platform team "
        f"to raise {WAIVER_MAX_DAYS_ENV}"
    )


def _finding(
    input_name: str,
    policy: PolicyInfo,
    severity: Severity,
    message: str,
    resource: dict[str, str] | None,
    config: PolicyConfig,
    today: dt.date,
    platform: PlatformSettings,
) -> Finding:
    matching = [w for w in config.waivers if waivers.matches(w, policy.id, input_name, resource)]
    valid = [w for w in matching if not waivers.too_far(w, today, platform.waiver_max_days)]
    active = next((w for w in valid if not waivers.expired(w, today)), None)
    note = None
    if active is None and valid:
        note = f"waiver expired on {valid[0].expires} and no longer applies ({valid[0].reason})"
    elif active is None and matching:
        note = _refusal(matching[0], today, platform)
    if platform.mode(config.mode) == "warn" and severity == "deny":
        severity = "warn"
    return Finding(input_name, policy, severity, message, resource, waiver=active, note=note)


def evaluate(
    policies: PolicySet,
    inputs: list[PolicyInput],
    config: PolicyConfig,
    today: dt.date,
    platform: PlatformSettings,
) -> CheckResult:
    """Evaluate each input document with compiled `policies`; waivers (within `platform`'s limit) and the mode
    (mlgit.yaml's `warn` only where `platform` allows it) applied."""
    started = time.perf_counter()
    findings = []
    for item in inputs:
        for v in policies.evaluate(item.document):
            finding = _finding(item.name, v.policy, v.severity, v.message, v.resource, config, today, platform)
            findings.append(finding)
    result = CheckResult([i.name for i in inputs], policies.policies, findings)
    result.evaluate_seconds = time.perf_counter() - started
    used = {id(f.waiver) for f in findings if f.waiver is not None}
    for waiver in config.waivers:
        if waivers.too_far(waiver, today, platform.waiver_max_days):
            result.notes.append(f"{_refusal(waiver, today, platform)}: {waivers.describe(waiver)}")
        elif waivers.expired(waiver, today):
            result.notes.append(f"expired waiver no longer applies: {waivers.describe(waiver)}")
        elif id(waiver) not in used:
            result.notes.append(f"waiver matched no finding (remove it?): {waivers.describe(waiver)}")
    if platform.mode(config.mode) == "warn":
        result.notes.append(
            f"policy.mode is warn (allowed by {platform.allow_warn_source}): denies are reported as warnings"
        )
    elif config.mode == "warn":
        result.notes.append(
            f"policy.mode warn in mlgit.yaml does not apply, so denies fail: the platform does not allow it (false, "
            f"from {platform.allow_warn_source}); a platform team allows it with {ALLOW_WARN_ENV}=true"
        )
    return result


def save_inputs(inputs: list[PolicyInput], folder: Path) -> None:
    """Write each input document as <name>.json: what `conftest test` or `opa eval` read."""
    folder.mkdir(parents=True, exist_ok=True)
    for item in inputs:
        (folder / f"{item.name}.json").write_text(json.dumps(item.document, indent=2) + "\n", encoding="utf-8")


def run_check(
    project: Project,
    environments: list[str],
    *,
    pipeline: bool,
    today: dt.date,
    platform: PlatformSettings,
    image: str | None = None,
    inputs_dir: Path | None = None,
) -> CheckResult:
    """Build each environment (with `image` instead of the pinned one), compile the policies once, evaluate."""
    started = time.perf_counter()
    policies = PolicySet(policy_dirs(project, platform))
    compile_seconds = time.perf_counter() - started
    inputs = [environment_input(project, env, image, platform) for env in environments]
    notes = allowed(project.config, platform).notes
    if pipeline:
        document, unchecked = pipeline_input(project, platform)
        inputs.append(document)
        notes += unchecked
    if inputs_dir is not None:
        save_inputs(inputs, inputs_dir)
    result = evaluate(policies, inputs, project.config.policy, today, platform)
    result.notes[:0] = notes
    result.compile_seconds = compile_seconds
    return result
