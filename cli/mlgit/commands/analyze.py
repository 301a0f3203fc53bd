"""`mlgit analyze`: judge an environment's canary against its stable track on Prometheus's numbers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mlgit.commands.arguments import DirArg
from mlgit.errors import ExitCode

if TYPE_CHECKING:
    from mlgit.analysis.verdict import Verdict

EXIT_CODES = {"pass": ExitCode.OK, "fail": ExitCode.ANALYSIS_FAILED, "inconclusive": ExitCode.ANALYSIS_INCONCLUSIVE}


def analyze(
    env: str = typer.Option(..., "--env", "-e", help="Environment whose canary is judged."),
    prometheus: str | None = typer.Option(
        None, "--prometheus", help="Prometheus base URL (default: monitoring.prometheus_url in mlgit.yaml)."
    ),
    window: str | None = typer.Option(
        None, "--window", help="Prometheus duration the numbers cover, e.g. 10m (default: canary.analysis.window)."
    ),
    output: Path | None = typer.Option(None, "--output", help="Write the verdict JSON here (every number and query)."),
    abort_on_fail: bool = typer.Option(
        False,
        "--abort-on-fail",
        help="On fail, open the abort merge request (merged at once with on_failure merge-abort-mr).",
    ),
    directory: Path = DirArg,
) -> None:
    """Compare the canary with the stable track over the window: error rate, p50 and p99 latency, input drift.

    Exit 0 when the canary passes every check of environments.<env>.canary.analysis, or when the pin file
    says no canary runs (no canary image, or weight 0 and no canary replicas: nothing to judge).

    Exit 4 when it fails one, or when the canary's 5xx count alone exceeds max_error_rate x min_requests
    (with --abort-on-fail, after opening the abort merge request).

    Exit 5 when the analysis is inconclusive: fewer requests than min_requests, or a number not measured
    (no sample, NaN or +Inf).

    Exit 1 on a user error (no canary in the environment, Prometheus unreachable, a bad --window).
    """
    from mlgit.analysis.run import analyze as run_analysis
    from mlgit.analysis.run import idle_reason, prometheus_url, write_verdict
    from mlgit.config.load import load_project
    from mlgit.console import err, out

    project = load_project(directory)
    idle = idle_reason(project, env)
    if idle is not None:
        out.print(idle, markup=False)
        return
    verdict = run_analysis(project, env, prometheus_url(project, env, prometheus), window)
    _print_table(verdict)
    if output is not None:
        write_verdict(output, verdict)
        err.print(f"verdict written to {output}", markup=False)
    if verdict.outcome == "fail" and abort_on_fail:
        from mlgit.promote import canary

        outcome = canary.abort_failed(project, env, verdict.as_json(), os.environ)
        out.print(canary.summary(outcome), markup=False)
    raise typer.Exit(int(EXIT_CODES[verdict.outcome]))


def _print_table(verdict: Verdict) -> None:
    from rich.markup import escape
    from rich.table import Table

    from mlgit.console import out

    stable, canary = verdict.stable, verdict.canary

    def number(value: float | None, scale: float = 1.0, unit: str = "") -> str:
        return "-" if value is None else f"{value * scale:.4g}{unit}"

    table = Table(
        "", "stable", "canary", title=f"{verdict.env} ({verdict.namespace}), last {verdict.thresholds.window}"
    )
    table.add_row("requests", number(stable.requests.value), number(canary.requests.value))
    table.add_row("5xx", number(stable.errors.value), number(canary.errors.value))
    table.add_row("error rate", number(stable.error_rate), number(canary.error_rate))
    table.add_row("p50", number(stable.p50_seconds.value, 1000, " ms"), number(canary.p50_seconds.value, 1000, " ms"))
    table.add_row("p99", number(stable.p99_seconds.value, 1000, " ms"), number(canary.p99_seconds.value, 1000, " ms"))
    if stable.drift is not None and canary.drift is not None:
        table.add_row("input drift (PSI)", number(stable.drift.value), number(canary.drift.value))
    out.print(table)
    checks = Table("check", "canary", "limit", "result")
    for check in verdict.checks:
        result = {True: "[green]pass[/]", False: "[red]fail[/]", None: "[yellow]not measured[/]"}[check.passed]
        checks.add_row(check.name, number(check.value), f"{check.limit:g}", result)
    out.print(checks)
    colour = {"pass": "green", "fail": "red", "inconclusive": "yellow"}[verdict.outcome]
    out.print(f"[bold {colour}]{verdict.outcome}[/]: " + escape("; ".join(verdict.reasons)))
