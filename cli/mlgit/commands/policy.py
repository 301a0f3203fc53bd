from __future__ import annotations

import datetime as dt
import os
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mlgit.commands.arguments import DirArg
from mlgit.errors import ExitCode, MlgitError
from mlgit.policy.formats import Format

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(help="Check the generated manifests and pipeline against Rego policies.", no_args_is_help=True)


@app.command("check")
def check(
    directory: Path = DirArg,
    env: str | None = typer.Option(None, "--env", help="Check this environment only (or review)."),
    all_: bool = typer.Option(False, "--all", help="Check every environment, review and the pipeline (default)."),
    fmt: Format = typer.Option("text", "--format", help="text, json, or junit (the pipeline's test report)."),
    strict: bool = typer.Option(False, "--strict", help="Warnings fail the check too."),
    image: str | None = typer.Option(
        None,
        "--image",
        help="Check with this image (REPO@sha256:... as the pipeline built it) instead of the pinned one.",
    ),
    output: Path | None = typer.Option(None, "--output", help="Write the report to this file instead of stdout."),
    save_inputs: Path | None = typer.Option(
        None, "--save-inputs", help="Also write each input document as DIR/<env>.json (for conftest or opa eval)."
    ),
    waiver_max_days: int | None = typer.Option(
        None,
        "--waiver-max-days",
        metavar="DAYS",
        help="Refuse waivers expiring more than this many days ahead (default: $MLGIT_WAIVER_MAX_DAYS, else 90).",
    ),
    policy_dir: list[Path] = typer.Option(
        [],
        "--policy-dir",
        metavar="DIR",
        help="A platform team's policy folder, outside the repository too; repeatable (default: $MLGIT_POLICY_DIRS).",
    ),
    allow_warn: bool | None = typer.Option(
        None,
        "--allow-warn/--no-allow-warn",
        help="Whether mlgit.yaml's policy.mode: warn applies (default: $MLGIT_POLICY_ALLOW_WARN, else no).",
    ),
    allowed_registry: list[str] = typer.Option(
        [],
        "--allowed-registry",
        metavar="REGISTRY",
        help="The platform's allowed registries, narrowing mlgit.yaml's; repeatable "
        "(default: $MLGIT_ALLOWED_REGISTRIES).",
    ),
    allowed_issuer: list[str] = typer.Option(
        [],
        "--allowed-issuer",
        metavar="ISSUER",
        help="The platform's allowed cert-manager issuers, narrowing mlgit.yaml's; repeatable "
        "(default: $MLGIT_ALLOWED_ISSUERS).",
    ),
    allowed_domain: list[str] = typer.Option(
        [],
        "--allowed-domain",
        metavar="DOMAIN",
        help="The platform's allowed DNS domains, narrowing mlgit.yaml's; repeatable "
        "(default: $MLGIT_ALLOWED_DOMAINS).",
    ),
) -> None:
    """Build each environment and evaluate mlgit's and the team's policies; exit 3 on a violation."""
    if env is not None and all_:
        raise MlgitError("--env and --all exclude each other", exit_code=ExitCode.USAGE)
    from mlgit.config.load import load_project
    from mlgit.console import err
    from mlgit.policy import report
    from mlgit.policy.check import run_check
    from mlgit.policy.inputs import environment_names
    from mlgit.policy.settings import platform_settings

    platform = platform_settings(
        os.environ,
        waiver_max_days=waiver_max_days,
        policy_dirs=policy_dir,
        allow_warn=allow_warn,
        allowed_registries=allowed_registry,
        allowed_issuers=allowed_issuer,
        allowed_domains=allowed_domain,
    )
    project = load_project(directory)
    names = environment_names(project, env)
    with _progress(err, [*names, *(["pipeline"] if env is None else [])]):
        result = run_check(
            project,
            names,
            pipeline=env is None,
            today=dt.date.today(),
            platform=platform,
            image=image,
            inputs_dir=save_inputs,
        )
    rendered = report.render(result, fmt, strict)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(rendered, encoding="utf-8")
        err.print(report.summary_line(result), markup=False, highlight=False)
    else:
        typer.echo(rendered, nl=False)
    if result.failed(strict):
        raise typer.Exit(int(ExitCode.POLICY_VIOLATION))


def _progress(console: Console, names: list[str]) -> AbstractContextManager[object]:
    """A spinner with the elapsed time on a terminal: the kustomize builds take seconds. Logs get nothing."""
    if not console.is_terminal:
        return nullcontext()
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True
    )
    progress.add_task(f"building and checking {', '.join(names)}", total=None)
    return progress
