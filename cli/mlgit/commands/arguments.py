"""Arguments that several commands share, declared once so that their help reads the same everywhere."""

from __future__ import annotations

from pathlib import Path

import typer

DirArg = typer.Argument(
    Path("."), help="Model repository, or a folder inside it (mlgit.yaml is looked for there, then upward)."
)
