"""One worker process of a multi-worker server (supervisor.py): `python -m mlgit_serving.worker`, its
WorkerSpec pickled on stdin. It serves like a lone server on the socket it inherited; /metrics shows every
worker's metrics merged (worker_metrics.py) and readiness waits for every worker (worker_readiness.py)."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import pickle
import signal
import socket
import sys

from fastapi import FastAPI
from pydantic import ValidationError

from .errors import ConfigurationError, RepositoryError
from .server import run_process
from .state import ServingState
from .supervisor import WorkerSpec
from .worker_metrics import address, pod_registry, serve_exposition
from .worker_readiness import ReadinessBoard, publish

# Not __name__: run as `python -m`, this module is "__main__", a name that says nothing in the JSON log.
logger = logging.getLogger("mlgit_serving.worker")
_PR_SET_PDEATHSIG = 1


def _exit_with_supervisor(supervisor_pid: int) -> None:
    """Get SIGTERM (and drain) when the supervisor dies, e.g. killed: no orphan keeps the port."""
    library = ctypes.util.find_library("c")
    if library is not None:
        ctypes.CDLL(library).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor_pid:  # it died before prctl took effect
        sys.exit(1)


class _Worker:
    def __init__(self, spec: WorkerSpec) -> None:
        self._spec = spec
        self._state: ServingState | None = None
        self._board = ReadinessBoard(spec.readiness_fd, spec.count)
        self._publisher: asyncio.Task[None] | None = None

    def prepare(self, app: FastAPI) -> None:
        state = self._state = app.state.serving
        state.metrics.scrape_registry = pod_registry(self._spec.group, self._spec.count)
        state.peers_not_ready = lambda: self._board.others_not_ready(self._spec.index)

    def started(self) -> None:
        """On the event loop, once the worker listens."""
        state = self._state
        assert state is not None
        serve_exposition(state.metrics.registry, address(self._spec.group, self._spec.index))
        self._publisher = asyncio.get_running_loop().create_task(
            publish(self._board, self._spec.index, state.repository.not_ready), name="readiness-board"
        )
        os.write(self._spec.started_fd, b"1")
        os.close(self._spec.started_fd)
        logger.info("worker listening", extra={"worker": self._spec.index})


def main() -> None:
    spec: WorkerSpec = pickle.load(sys.stdin.buffer)
    _exit_with_supervisor(spec.supervisor_pid)
    listener = socket.socket(fileno=spec.listen_fd)
    worker = _Worker(spec)
    try:
        run_process(spec.settings, [listener], worker.prepare, worker.started)
    # as server.main(): OSError is a TLS file or the metrics port; the supervisor reports the exit
    except (RepositoryError, ConfigurationError, ValidationError, OSError) as exc:
        logger.error(str(exc), extra={"worker": spec.index})
        sys.exit(1)


if __name__ == "__main__":
    main()
