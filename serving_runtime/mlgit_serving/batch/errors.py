"""The batch runner's two kinds of failure: one that stops the run, and one file that cannot be used."""

from __future__ import annotations


class BatchError(Exception):
    """The run cannot go on (the model does not load, a location cannot be listed): exit 1, nothing more read."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class BadFile(Exception):
    """One input cannot be used (corrupt, wrong shape or datatype, wrong size): reported by name, the run goes on."""
