"""`mlgit batch` (run): the serving runtime's batch runner over a folder, in this process (docs/batch.md).

The runner is mlgit_serving.batch, the very code the model image runs in a Kubernetes Job; here it gets the
runtime's model-repository layout that `mlgit serve` builds (settings from mlgit.yaml as it is now).
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from mlgit.config.load import Project
from mlgit.console import err
from mlgit.errors import ExitCode, MlgitError
from mlgit.serve import RUNTIME_INSTALL_HINT, runtime_repository


def _runner() -> Any:
    try:
        from mlgit_serving.batch import runner
    except ImportError:
        raise MlgitError(
            "`mlgit batch` runs the serving runtime's batch runner, which is not installed", RUNTIME_INSTALL_HINT
        ) from None
    return runner


def run_locally(project: Project, source: str, destination: str, shard: str | None) -> None:
    """Run the model over `source`, writing to `destination`; MlgitError (exit 1) when any input failed."""
    runner = _runner()
    from mlgit_serving.batch.errors import BatchError

    try:
        chosen = runner.Shard.parse(shard) if shard else runner.Shard()
    except ValueError as exc:
        raise MlgitError(f"--shard: {exc}", exit_code=ExitCode.USAGE) from None
    with runtime_repository(project) as repository:
        try:
            summary = runner.run_batch(
                repository, source, destination, model=project.config.name, shard=chosen,
                report=lambda line: err.print(escape(line)),
            )  # fmt: skip
        except BatchError as exc:
            raise MlgitError(exc.message, exc.hint) from None
    err.print(escape(summary.line()))
    if summary.failed:
        raise MlgitError(
            f"{summary.failed} input(s) failed (named above)",
            "fix or remove them and run the same command again: inputs whose outputs exist are skipped",
        )
