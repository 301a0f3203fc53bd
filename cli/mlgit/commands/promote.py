"""`mlgit promote`: open (or update) the merge request that pins one environment's digest in the next."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from mlgit.commands.arguments import DirArg
from mlgit.errors import MlgitError


def promote(
    source: str = typer.Option(..., "--from", help="Environment whose digest is promoted (e.g. dev)."),
    target: str = typer.Option(..., "--to", help="The next environment in promotion.order (e.g. staging)."),
    image: str | None = typer.Option(
        None, "--image", help="Promote this REPO@sha256:DIGEST (default: the build's MLGIT_IMAGE, or the source's pin)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the merge request it would open; change nothing."),
    test_report: Path | None = typer.Option(
        None, "--test-report", help="JUnit XML of the model tests, summarised in the description."
    ),
    canary: bool = typer.Option(
        False, "--canary", help="Pin it as the target's canary (environments.<to>.canary), not its stable image."
    ),
    replace: bool = typer.Option(False, "--replace", help="With --canary: replace a canary running another digest."),
    verdict: Path | None = typer.Option(
        None, "--verdict", help="Verdict JSON of `mlgit analyze --output`, shown in the description."
    ),
    directory: Path = DirArg,
) -> None:
    """Pin the source environment's digest in the target's overlay through a merge request.

    With --canary the digest becomes the target's canary at canary.weight (docs/canary.md); `mlgit canary`
    changes its weight, promotes or aborts it.

    Exit 0 also when the target already pins that digest (nothing to promote).

    Exit 1 on a user error (unknown environment, order violated, no permission, push rejected, a canary
    running in the target: promote or abort it first).

    Exit 3 when the target's policies deny the new pin.
    """
    from rich.markup import escape

    from mlgit.config.load import load_project
    from mlgit.console import err, out
    from mlgit.promote import run

    project = load_project(directory)
    if canary:
        from mlgit.analysis.run import read_verdict
        from mlgit.commands.canary import report
        from mlgit.promote.canary import CanaryOptions, start

        found = read_verdict(verdict) if verdict is not None else None
        step = start(project, source, CanaryOptions(target, dry_run, found), os.environ, image=image,
                     replace=replace, test_report=test_report)  # fmt: skip
        report(step, project.config.promotion.labels)
        return
    if replace or verdict is not None:
        raise MlgitError("--replace and --verdict go with --canary", "add --canary, or leave them out")
    options = run.PromoteOptions(source, target, image, dry_run, test_report)
    outcome = run.promote(project, options, os.environ)
    plan = outcome.plan
    for note in outcome.notes:
        err.print(f"[yellow]note:[/] {escape(note)}")
    if outcome.status == "up-to-date":
        out.print(f"nothing to promote: {plan.target} already runs {plan.image}", markup=False)
        return
    if outcome.status == "dry-run":
        out.print(f"dry run, nothing changed. Would open a merge request from {plan.branch} into "
                  f"{outcome.target_branch}:\n\ntitle: {plan.title}\nlabels: "
                  f"{', '.join(project.config.promotion.labels) or '-'}\nreviewers: "
                  f"{', '.join(project.config.promotion.reviewers) or '-'}\n", markup=False)  # fmt: skip
        out.print(outcome.pin_diff or "", markup=False)
        out.print("description:\n\n" + (outcome.description or ""), markup=False, end="")
        return
    if outcome.status == "pushed":
        out.print(outcome.description or "", markup=False, end="")
        out.print(f"pushed {plan.branch}; GitLab opens or updates its merge request into {outcome.target_branch}",
                  markup=False)  # fmt: skip
        return
    out.print(f"{outcome.status} merge request {outcome.url}: {plan.title}", markup=False)
