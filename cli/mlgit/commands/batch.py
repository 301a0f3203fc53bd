"""`mlgit batch [run] [DIR] --input PATH --output PATH [--shard I/N]`: the model over a folder, locally.

Exit codes: 0 every input done (or already done), 1 an input failed (each named, then a summary) or the run could
not start (the model does not load, a location cannot be read), 2 usage.
"""

from __future__ import annotations

from pathlib import Path

import typer

from mlgit.commands.arguments import DirArg


def run(
    directory: Path = DirArg,
    source: str = typer.Option(
        ..., "--input", help="Folder or s3://bucket/prefix of inputs: .npz, .json (OIP v2 requests), images."
    ),
    destination: str = typer.Option(
        ..., "--output", help="Folder or s3://bucket/prefix: <stem>.npz per input; inputs with outputs are skipped."
    ),
    shard: str | None = typer.Option(None, "--shard", help="INDEX/COUNT: every COUNT-th sorted input from INDEX."),
) -> None:
    """Run the model over every input file, writing one output per input (resumable; docs/batch.md)."""
    from mlgit.config.load import load_project
    from mlgit.local_batch import run_locally

    run_locally(load_project(directory), source, destination, shard)
