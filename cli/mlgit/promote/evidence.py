"""What a reviewer needs to approve a promotion, as the merge request's description (GitLab Markdown).

The smoke-check latency is read from `MLGIT_SMOKE_LATENCY_MS`, which the source environment's deploy job
exports through its dotenv report when it records one; without it the description says so.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlgit.policy.check import CheckResult
from mlgit.policy.report import summary_line
from mlgit.promote.git import SOURCE_COMMIT_TRAILER
from mlgit.promote.models import ModelFacts, signature_changes
from mlgit.promote.plan import Plan

# GitLab stores up to 1 MB of description; a huge diff helps nobody anyway.
MAX_DIFF_CHARS = 60_000
SMOKE_LATENCY_VARIABLE = "MLGIT_SMOKE_LATENCY_MS"


@dataclass(frozen=True)
class Evidence:
    plan: Plan
    model_name: str
    current_image: str | None  # what the target pins now (None: unpinned)
    new_model: ModelFacts | None
    current_model: ModelFacts | None
    policy: CheckResult
    tests: str
    smoke: str
    links: list[tuple[str, str]]
    manifest_diff: str

    @property
    def source_commit(self) -> str | None:
        return self.new_model.commit if self.new_model else None


def junit_summary(report: Path | None) -> str:
    """One line from a JUnit XML report (the model-test job's)."""
    if report is None:
        return "no test report given"
    if not report.is_file():
        return f"report {report} not found"
    try:
        root = ET.parse(report).getroot()
    except ET.ParseError as exc:
        return f"report {report} is not JUnit XML ({exc})"
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    counts = {key: 0 for key in ("tests", "failures", "errors", "skipped")}
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, 0) or 0)
    failed = counts["failures"] + counts["errors"]
    passed = counts["tests"] - failed - counts["skipped"]
    verdict = "passed" if failed == 0 else "FAILED"
    return f"{verdict}: {passed} passed, {failed} failed, {counts['skipped']} skipped ({report.name})"


def smoke_summary(environ: Mapping[str, str], source: str) -> str:
    value = environ.get(SMOKE_LATENCY_VARIABLE)
    if not value:
        return f"not recorded (the deploy of {source} exports no {SMOKE_LATENCY_VARIABLE})"
    return f"{value} ms for the sample request on {source}"


def links(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    named = (("source pipeline", "CI_PIPELINE_URL"), ("promote job", "CI_JOB_URL"))
    return [(label, environ[var]) for label, var in named if environ.get(var)]


def _opsets(model: ModelFacts | None) -> str:
    if model is None:
        return "-"
    if model.opsets is None:
        return model.note or "-"
    return ", ".join(f"{domain} {version}" for domain, version in sorted(model.opsets.items()))


def _signature(ev: Evidence) -> list[str]:
    new, old = ev.new_model, ev.current_model
    if old is None:
        return [f"nothing to compare with: {ev.plan.target} runs no promoted model yet"]
    if new is None or new.signature is None or old.signature is None:
        return ["not compared: " + "; ".join(m.note for m in (old, new) if m is not None and m.note)]
    changes = signature_changes(old.signature, new.signature)
    return [f"**changed**: {c}" for c in changes] or ["unchanged"]


def _policy(result: CheckResult) -> list[str]:
    lines = [summary_line(result)]
    lines += [f"{f.status}: {f.policy.id} {f.resource_name}: {f.message}" for f in result.findings]
    return lines


def _cell(value: str | None) -> str:
    return f"`{value}`" if value else "-"


def _short(commit: str | None) -> str | None:
    return commit[:12] if commit else None


def description(ev: Evidence) -> str:
    plan = ev.plan
    new, old = ev.new_model, ev.current_model
    diff = ev.manifest_diff
    if len(diff) > MAX_DIFF_CHARS:
        diff = diff[:MAX_DIFF_CHARS] + f"\n... (cut at {MAX_DIFF_CHARS} characters; the MR pipeline has it all)\n"
    lines = [
        f"Promotes **{ev.model_name}** from `{plan.source}` to `{plan.target}`: pins the image below in "
        f"`{plan.pin_file}` (the only file this merge request changes).",
        "",
        f"| | `{plan.target}` now | promoted from `{plan.source}` |",
        "|---|---|---|",
        f"| image | {_cell(ev.current_image) if ev.current_image else 'unpinned'} | `{plan.image}` |",
        f"| model sha256 | {_cell(old and old.sha256)} | {_cell(new and new.sha256)} |",
        f"| ONNX opsets | {_opsets(old)} | {_opsets(new)} |",
        f"| built from commit | {_cell(_short(old and old.commit))} | {_cell(_short(ev.source_commit))} |",
        "",
        f"Image source: {plan.image_origin}.",
        "",
        "**Signature** against what the target runs now:",
        *(f"- {line}" for line in _signature(ev)),
        "",
        f"**Tests**: {ev.tests}",
        "",
        f"**Policy check** of `{plan.target}` with the new pin:",
        *(f"- {line}" for line in _policy(ev.policy)),
        "",
        f"**Smoke check** latency on `{plan.source}`: {ev.smoke}",
    ]
    if ev.links:
        lines += ["", "**Links**: " + ", ".join(f"[{label}]({url})" for label, url in ev.links)]
    lines += [
        "",
        f"<details><summary>Rendered manifests of <code>{plan.target}</code>: diff</summary>",
        "",
        "```diff",
        (diff.rstrip("\n") if diff else "(no change)"),
        "```",
        "",
        "</details>",
        "",
        f"<!-- mlgit promotion {plan.source} -> {plan.target} -->",
    ]
    return "\n".join(lines) + "\n"


def commit_message(ev: Evidence) -> str:
    """The promotion commit's message; its trailers let later promotions find the image's source commit."""
    plan = ev.plan
    new = ev.new_model
    body = [
        f"Pin {plan.image} in {plan.pin_file}",
        f"(from {plan.image_origin}; {plan.target} pinned {ev.current_image or 'nothing'} before).",
    ]
    if new is not None:
        body.append(f"Model sha256 {new.sha256}, opsets {_opsets(new)}.")
    trailers = [f"Mlgit-Promotion: {plan.source} -> {plan.target}", f"Mlgit-Image: {plan.image}"]
    if ev.source_commit:
        trailers.append(f"{SOURCE_COMMIT_TRAILER}: {ev.source_commit}")
    return "\n".join([plan.title, "", *body, "", *trailers]) + "\n"
