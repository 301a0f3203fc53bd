"""Readiness across worker processes: the pod is ready only when every worker has loaded its models.

A probe reaches one worker (the kernel picks by the connection's hash), and a worker that answered only for
itself would let the pod take traffic while a sibling is still loading (its requests: 503) or restarting.
The supervisor creates one shared byte per worker (a memfd, passed to each worker, nothing on disk); each
worker keeps its own byte current, and a readiness check reads them all.
"""

from __future__ import annotations

import asyncio
import mmap
import os
from collections.abc import Callable

PUBLISH_SECONDS = 0.25


class ReadinessBoard:
    """One byte per worker, 1 when that worker's models are loaded."""

    def __init__(self, fd: int, count: int) -> None:
        self._count = count
        self._bytes = mmap.mmap(fd, count)

    @classmethod
    def create(cls, count: int) -> tuple[ReadinessBoard, int]:
        """A new board (all workers not ready) and the descriptor that workers map it from."""
        fd = os.memfd_create("mlgit-serving-readiness")
        os.ftruncate(fd, count)
        os.set_inheritable(fd, True)
        return cls(fd, count), fd

    def set(self, index: int, ready: bool) -> None:
        self._bytes[index] = 1 if ready else 0

    def others_not_ready(self, index: int) -> list[str]:
        """Why the pod is not ready, as far as the workers other than `index` go."""
        waiting = [str(i) for i in range(self._count) if i != index and self._bytes[i] != 1]
        return [f"worker(s) {', '.join(waiting)} of {self._count} not ready (loading or restarting)"] if waiting else []


async def publish(board: ReadinessBoard, index: int, own_not_ready: Callable[[], list[str]]) -> None:
    """Keep worker `index`'s byte current, until cancelled."""
    while True:
        board.set(index, not own_not_ready())
        await asyncio.sleep(PUBLISH_SECONDS)
