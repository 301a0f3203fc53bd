"""What a batch run tells the person watching: failures as they happen, and a progress bar on a terminal.

The bar is drawn on stderr only when stderr is a terminal (a Job's log, a CI log or a pipe gets the failure
lines and the summary alone), at most ten times a second, and erased before any other line is printed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .runner import Summary

WIDTH = 30
REDRAW_SECONDS = 0.1


class Progress:
    def __init__(self, report: Callable[[str], None], stream: TextIO | None) -> None:
        self._report = report
        self._stream = stream  # None: no bar
        self._total = 0
        self._base = 0  # files already settled before the run started (name clashes)
        self._started = 0.0
        self._drawn = 0.0

    @classmethod
    def for_stderr(cls, report: Callable[[str], None] | None = None) -> Progress:
        stream = sys.stderr if sys.stderr.isatty() else None
        return cls(report or (lambda line: print(line, file=sys.stderr, flush=True)), stream)

    def start(self, total: int, summary: Summary) -> None:
        self._total, self._base, self._started = total, summary.done + summary.failed, time.perf_counter()

    def report(self, line: str) -> None:
        self._erase()
        self._report(line)

    def advance(self, summary: Summary) -> None:
        now = time.perf_counter()
        if self._stream is None or not self._total or now - self._drawn < REDRAW_SECONDS:
            return
        self._drawn = now
        settled = summary.done + summary.failed - self._base
        filled = WIDTH * settled // self._total
        rate = summary.rows / (now - self._started) if now > self._started else 0.0
        bar = "#" * filled + "-" * (WIDTH - filled)
        failed = f", {summary.failed} failed" if summary.failed else ""
        self._stream.write(f"\r[{bar}] {settled}/{self._total} files{failed}, {rate:.0f} rows/s")
        self._stream.flush()

    def finish(self) -> None:
        self._erase()

    def _erase(self) -> None:
        if self._stream is not None and self._drawn:
            self._stream.write("\r\033[K")
            self._stream.flush()
            self._drawn = 0.0
