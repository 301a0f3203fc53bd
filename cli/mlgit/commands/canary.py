"""`mlgit canary`: the merge requests that change a running canary (weight, promote, abort)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mlgit.commands.arguments import DirArg

if TYPE_CHECKING:
    from mlgit.promote.canary import CanaryOutcome

app = typer.Typer(no_args_is_help=True, help="Change an environment's canary through one-file merge requests.")

EnvOpt = typer.Option(..., "--env", "-e", help="Environment whose canary changes.")
VerdictOpt = typer.Option(
    None, "--verdict", help="Verdict JSON of `mlgit analyze --output`, shown in the merge request's description."
)
DryRunOpt = typer.Option(False, "--dry-run", help="Print the merge request it would open; change nothing.")


@app.callback()
def _canary() -> None:
    """Change an environment's canary through one-file merge requests (docs/canary.md).

    Exit 0 also when there is nothing to change; 1 on a user error (no canary in the environment, no
    permission, push rejected; for weight and promote, a --verdict of another environment or of other digests than
    the pin file's).
    """


def report(outcome: CanaryOutcome, labels: list[str]) -> None:
    """Print a canary step's outcome: the merge request it opened, or (dry run) the one it would open."""
    from rich.markup import escape

    from mlgit.console import err, out
    from mlgit.promote.canary import summary

    for note in outcome.notes if outcome.status != "up-to-date" else []:
        err.print(f"[yellow]note:[/] {escape(note)}")
    if outcome.status == "dry-run":
        out.print(f"dry run, nothing changed. Would open a merge request from {outcome.branch} into "
                  f"{outcome.target_branch}:\n\ntitle: {outcome.title}\nlabels: {', '.join(labels) or '-'}\n",
                  markup=False)  # fmt: skip
        out.print(outcome.pin_diff or "", markup=False)
        out.print("description:\n\n" + (outcome.description or ""), markup=False, end="")
        return
    if outcome.status == "pushed":
        out.print(outcome.description or "", markup=False, end="")
    out.print(summary(outcome), markup=False)


def _verdict(path: Path | None) -> dict[str, Any] | None:
    from mlgit.analysis.run import read_verdict

    return read_verdict(path) if path is not None else None


@app.command("weight")
def weight(
    percent: int = typer.Argument(..., min=0, max=100, help="The canary's share of requests, 0-100."),
    env: str = EnvOpt,
    verdict: Path | None = VerdictOpt,
    dry_run: bool = DryRunOpt,
    directory: Path = DirArg,
) -> None:
    """Open the merge request that sends PERCENT% of the environment's requests to its canary."""
    from mlgit.config.load import load_project
    from mlgit.promote import canary

    project = load_project(directory)
    options = canary.CanaryOptions(env, dry_run, _verdict(verdict), verdict_file=f"--verdict {verdict}")
    report(canary.set_weight(project, percent, options, os.environ), project.config.promotion.labels)


@app.command("promote")
def promote(
    env: str = EnvOpt, verdict: Path | None = VerdictOpt, dry_run: bool = DryRunOpt, directory: Path = DirArg
) -> None:
    """Open the merge request that makes the canary's digest the stable pin (weight 0, canary replicas 0).

    A --verdict that failed is refused: abort the canary instead.
    """
    from mlgit.config.load import load_project
    from mlgit.promote import canary

    project = load_project(directory)
    options = canary.CanaryOptions(env, dry_run, _verdict(verdict), verdict_file=f"--verdict {verdict}")
    report(canary.promote_canary(project, options, os.environ), project.config.promotion.labels)


@app.command("abort")
def abort(
    env: str = EnvOpt,
    merge: bool = typer.Option(
        False, "--merge", help="Merge it at once through GitLab's API (needs MLGIT_GITLAB_TOKEN): still a commit."
    ),
    verdict: Path | None = VerdictOpt,
    dry_run: bool = DryRunOpt,
    directory: Path = DirArg,
) -> None:
    """Open the merge request that stops the canary: weight 0 and canary replicas 0."""
    from mlgit.config.load import load_project
    from mlgit.promote import canary

    project = load_project(directory)
    options = canary.CanaryOptions(env, dry_run, _verdict(verdict), merge)
    report(canary.abort(project, options, os.environ), project.config.promotion.labels)
