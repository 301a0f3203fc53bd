"""The one error type users see, and the exit codes the CLI documents."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any


class ExitCode(IntEnum):
    """Exit codes of every mlgit command (documented in the README)."""

    OK = 0
    USER_ERROR = 1
    USAGE = 2
    POLICY_VIOLATION = 3
    ANALYSIS_FAILED = 4  # `mlgit analyze`: the canary is worse than its thresholds allow
    ANALYSIS_INCONCLUSIVE = 5  # `mlgit analyze`: too little traffic, or a number Prometheus could not give


@dataclass(frozen=True)
class Location:
    """Where in a file the user's mistake is (1-based line and column)."""

    path: Path
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        text = str(self.path)
        if self.line is not None:
            text += f":{self.line}"
            if self.column is not None:
                text += f":{self.column}"
        return text


class MlgitError(Exception):
    """A mistake the user can fix: raised anywhere, caught and printed only at the CLI edge.

    `problems` holds several findings at once (e.g. every invalid field of mlgit.yaml), each
    already formatted with its location, so the user fixes them in one pass.
    """

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        location: Location | None = None,
        problems: list[str] | None = None,
        exit_code: ExitCode = ExitCode.USER_ERROR,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.location = location
        self.problems = problems or []
        self.exit_code = exit_code

    def as_dict(self) -> dict[str, Any]:
        """The error as JSON-ready data, for commands that print their result as JSON (--json)."""
        where = self.location
        return {
            "message": self.message,
            "file": str(where.path) if where else None,
            "line": where.line if where else None,
            "column": where.column if where else None,
            "details": self.problems,
            "hint": self.hint,
        }

    def __str__(self) -> str:
        head = f"{self.location}: {self.message}" if self.location else self.message
        lines = [head, *(f"  {p}" for p in self.problems)]
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)
