"""Terminal output: results to stdout, errors and progress to stderr."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from mlgit.errors import MlgitError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_warning(message: str) -> None:
    """A problem that does not stop the command (e.g. a placeholder value), on stderr."""
    err.print(f"[bold yellow]warning:[/] {escape(message)}")


def print_error(error: MlgitError) -> None:
    head = f"{error.location}: {error.message}" if error.location else error.message
    err.print(f"[bold red]error:[/] {escape(head)}")
    for problem in error.problems:
        err.print(f"  [red]-[/] {escape(problem)}")
    if error.hint:
        err.print(f"[yellow]hint:[/] {escape(error.hint)}")
