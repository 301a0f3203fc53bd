"""mlgit.yaml environments.<env>.canary: defaults, and bad input (exit 1, the field named, no traceback)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgit.config.load import load_project
from mlgit.main import app
from mlgit.targets import target

runner = CliRunner()


def _append(repo: Path, text: str) -> None:
    with (repo / "mlgit.yaml").open("a") as handle:
        handle.write(text)


def test_defaults_and_the_target(model_repo: Path) -> None:
    _append(model_repo, "environments:\n  dev: {}\n  prod:\n    canary: {mirror: true}\n")
    config = load_project(model_repo, warn=False).config
    canary = config.environments["prod"].canary
    assert canary is not None
    assert (canary.weight, canary.replicas, canary.mirror, canary.on_failure) == (10, 1, True, "open-abort-mr")
    analysis = canary.analysis
    assert (analysis.window, analysis.min_requests, analysis.max_error_rate) == ("10m", 100, 0.01)
    assert (analysis.max_p99_ratio, analysis.max_p50_ratio, analysis.max_drift) == (1.25, 1.25, None)
    prod = target(config, "prod")
    assert (prod.canary_name, prod.canary_instance) == ("linear-canary", "linear-prod-canary")
    assert target(config, "dev").canary is None


CASES = [
    ("weight-over-100", "    canary: {weight: 101}\n",
     r"environments\.prod\.canary\.weight: Input should be less than or equal to 100"),
    ("no-replicas", "    canary: {replicas: 0}\n",
     r"environments\.prod\.canary\.replicas: Input should be greater than or equal to 1"),
    ("window-not-a-duration", "    canary: {analysis: {window: ten minutes}}\n",
     r"environments\.prod\.canary\.analysis\.window: .*'ten minutes' is not a Prometheus duration"),
    ("unknown-on-failure", "    canary: {on_failure: rollback}\n",
     r"environments\.prod\.canary\.on_failure: Input should be 'open-abort-mr' or 'merge-abort-mr'"),
    ("no-exposure", "    exposure: {kind: none}\n    canary: {}\n",
     r"environments\.prod\.canary: the environment has exposure kind none, so nothing splits its requests"),
    ("ingress-not-nginx", "    exposure: {kind: ingress, ingress_class: traefik}\n    canary: {}\n",
     r"environments\.prod\.canary: the split uses ingress-nginx's canary annotations.*'traefik'"),
    ("label-too-long", "", r"environments\.p{50}\.canary: the canary's instance label 'linear-p{50}-canary' has 64 "
     r"characters, labels allow 63"),
    ("route-cannot-mirror", "    platform: openshift\n    exposure: {kind: route}\n    canary: {mirror: true}\n",
     r"environments\.prod\.canary\.mirror: an OpenShift Route cannot mirror requests"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "prod", "pattern"), CASES, ids=[c[0] for c in CASES])
def test_bad_canaries_are_reported(model_repo: Path, case: str, prod: str, pattern: str) -> None:
    # a 50-character environment: `linear-<env>` fits a label, `linear-<env>-canary` does not
    _append(
        model_repo, "environments:\n  prod:\n" + prod if prod else f"environments:\n  {'p' * 50}:\n    canary: {{}}\n"
    )
    result = runner.invoke(app, ["validate", str(model_repo)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert re.search(pattern, " ".join(result.output.split())), result.output


def test_review_apps_have_no_canary(model_repo: Path) -> None:
    _append(model_repo, "review:\n  canary: {}\n")
    result = runner.invoke(app, ["validate", str(model_repo)])
    assert result.exit_code == 1, result.output
    assert re.search(r"review\.canary: unknown key 'canary'", result.output), result.output
