"""What a reviewer reads on a canary merge request: the state before and after, the analysis verdict when one
was given (`--verdict FILE`, written by `mlgit analyze --output`), and the diffs; and the commit message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mlgit.manifests.canary_state import CanaryState
from mlgit.promote.evidence import MAX_DIFF_CHARS
from mlgit.promote.git import SOURCE_COMMIT_TRAILER

CANARY_SOURCE_TRAILER = "Mlgit-Canary-Source-Commit"
Action = Literal["start", "weight", "promote", "abort"]
_WHAT = {
    "start": "starts a canary",
    "weight": "changes the canary's share of requests",
    "promote": "makes the canary's image the stable one",
    "abort": "stops the canary (weight 0, no canary pods)",
}


@dataclass(frozen=True)
class Step:
    action: Action
    env: str
    title: str
    before: CanaryState
    after: CanaryState


def _image(image: str | None) -> str:
    return f"`{image}`" if image else "unpinned"


def _row(label: str, before: str, after: str) -> str:
    return f"| {label} | {before} | {after if after != before else 'unchanged'} |"


def _number(value: Any, scale: float = 1.0, unit: str = "") -> str:
    return "-" if value is None else f"{value * scale:.4g}{unit}"


def verdict_lines(verdict: dict[str, Any]) -> list[str]:
    """The verdict JSON of `mlgit analyze` as Markdown: outcome, checks, numbers, and the queries folded away."""
    stable, canary = verdict.get("stable", {}), verdict.get("canary", {})
    window = verdict.get("thresholds", {}).get("window", "?")

    def value(track: dict[str, Any], key: str) -> Any:
        return (track.get(key) or {}).get("value")

    lines = [
        f"**Canary analysis**: **{verdict['verdict']}** (`mlgit analyze`, last {window} of "
        f"{verdict.get('prometheus', '?')}, namespace `{verdict.get('namespace', '?')}`)",
        *(f"- {reason}" for reason in verdict.get("reasons", [])),
        "",
        "| | stable | canary |",
        "|---|---|---|",
        f"| requests | {_number(value(stable, 'requests'))} | {_number(value(canary, 'requests'))} |",
        f"| error rate | {_number(stable.get('error_rate'))} | {_number(canary.get('error_rate'))} |",
        f"| p50 | {_number(value(stable, 'p50_seconds'), 1000, ' ms')} | "
        f"{_number(value(canary, 'p50_seconds'), 1000, ' ms')} |",
        f"| p99 | {_number(value(stable, 'p99_seconds'), 1000, ' ms')} | "
        f"{_number(value(canary, 'p99_seconds'), 1000, ' ms')} |",
    ]
    if "drift" in canary:
        lines.append(f"| input drift | {_number(value(stable, 'drift'))} | {_number(value(canary, 'drift'))} |")
    lines += ["", "| check | canary | limit | result |", "|---|---|---|---|"]
    result = {True: "pass", False: "**fail**", None: "not measured"}
    for check in verdict.get("checks", []):
        lines.append(f"| {check['name']} | {_number(check.get('value'))} | {check.get('limit')} | "
                     f"{result[check.get('passed')]} |")  # fmt: skip
    queries = [m["query"] for track in (stable, canary) for m in track.values() if isinstance(m, dict) and "query" in m]
    lines += ["", "<details><summary>PromQL</summary>", "", "```promql", *queries, "```", "", "</details>"]
    return lines


def _cut(diff: str) -> str:
    if len(diff) > MAX_DIFF_CHARS:
        return diff[:MAX_DIFF_CHARS] + f"\n... (cut at {MAX_DIFF_CHARS} characters; the MR pipeline has it all)\n"
    return diff


def canary_description(model: str, pin_file: str, step: Step, verdict: dict[str, Any] | None, manifests: str,
                       promotion: str | None) -> str:  # fmt: skip
    """The merge request's description; `promotion`: a canary start's promotion evidence (with the manifests)."""
    before, after = step.before, step.after
    lines = [
        f"**{model}** in `{step.env}`: {_WHAT[step.action]}. This merge request changes only `{pin_file}`.",
        "",
        f"| | `{step.env}` now | after this merge request |",
        "|---|---|---|",
        _row("stable image", _image(before.stable), _image(after.stable)),
        _row("canary image", _image(before.canary), _image(after.canary)),
        _row("canary weight", f"{before.weight}%", f"{after.weight}%"),
        _row("canary replicas", str(before.replicas), str(after.replicas)),
        "",
    ]
    lines += [*verdict_lines(verdict), ""] if verdict is not None else ["**Canary analysis**: none given", ""]
    if promotion is not None:
        return "\n".join(lines) + "\n" + promotion
    lines += [
        f"<details><summary>Rendered manifests of <code>{step.env}</code>: diff</summary>",
        "",
        "```diff",
        _cut(manifests).rstrip("\n") or "(no change)",
        "```",
        "",
        "</details>",
        "",
        f"<!-- mlgit canary {step.action} {step.env} -->",
    ]
    return "\n".join(lines) + "\n"


def canary_message(step: Step, pin_file: str, stable_source: str | None, canary_source: str | None) -> str:
    """The commit message; its trailers name the commits both images were built from (promote/canary.py)."""
    after = step.after
    body = [
        f"{_WHAT[step.action].capitalize()} in {step.env}: {pin_file} pins stable {after.stable or 'nothing'}, "
        f"canary {after.canary or 'nothing'} at {after.weight}% with {after.replicas} replicas.",
    ]
    trailers = [f"Mlgit-Canary: {step.env} {step.action}"]
    if stable_source:
        trailers.append(f"{SOURCE_COMMIT_TRAILER}: {stable_source}")
    if canary_source:
        trailers.append(f"{CANARY_SOURCE_TRAILER}: {canary_source}")
    return "\n".join([step.title, "", *body, "", *trailers]) + "\n"
