"""Several server processes on one port (MLGIT_SERVING_WORKERS > 1), and the process that watches them.

One Python process serves on one core (the GIL); a pod with more CPUs needs more processes. This one binds
the port once per worker (SO_REUSEPORT: the kernel spreads new connections over the workers' sockets),
starts each worker as a fresh interpreter (`python -m mlgit_serving.worker`: no fork of a process that
holds threads) with its socket, and then only watches:

- SIGTERM and SIGINT are passed on to every worker, each of which drains as a lone server does
  (server.py); this process exits once they all have: 0 when every one exited cleanly, else 1.
- A worker that dies after it listened is restarted on the same socket (connections that arrive meanwhile
  wait in that socket's accept queue). One that dies before it listened, or a MAX_RESTARTS-th restart
  within RESTART_WINDOW_SECONDS, stops the server with exit status 1 (WorkersFailed, saying which): a crash
  that repeats is the pod's to report (CrashLoopBackOff), not this process's to hide.
- metrics_port, when set, is served from here, merging every worker's metrics (worker_metrics.py).
- Readiness answers for the pod: not ready until every worker has loaded its models (worker_readiness.py).

Workers run in their own process group, so that a terminal's Ctrl-C reaches each of them once, from here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from types import FrameType

from prometheus_client import start_http_server

from .logs import configure_logging
from .repository import scan
from .settings import ServerSettings
from .worker_metrics import pod_registry
from .worker_readiness import ReadinessBoard

logger = logging.getLogger(__name__)

MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0
# After drain_seconds, how long the workers get to exit before they are killed.
EXIT_GRACE_SECONDS = 10.0
_POLL_SECONDS = 0.1
_BACKLOG = 2048  # uvicorn's


class WorkersFailed(SystemExit):
    """The server stopped (exit status 1) because its workers failed; `reason` says how, its log the rest."""

    def __init__(self, reason: str) -> None:
        super().__init__(1)
        self.reason = reason


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process is told on its stdin (pickled: settings may hold secrets, kept off argv)."""

    settings: ServerSettings
    index: int
    count: int
    listen_fd: int
    started_fd: int  # written to once the worker listens
    readiness_fd: int  # worker_readiness.ReadinessBoard
    group: str  # the supervisor's pid: names the workers' metrics sockets
    supervisor_pid: int


def bind_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on host:port (port 0: the one the first gets), one per worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(_BACKLOG)
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _Worker:
    def __init__(self, spec: WorkerSpec, started_fd: int) -> None:
        self.index = spec.index
        self.started = False
        self._started_fd = started_fd
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlgit_serving.worker"],
            stdin=subprocess.PIPE,
            pass_fds=(spec.listen_fd, spec.started_fd, spec.readiness_fd),
            process_group=0,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(pickle.dumps(spec))
        self.process.stdin.close()

    def poll_started(self) -> bool:
        if not self.started:
            with contextlib.suppress(BlockingIOError):  # not yet
                self.started = os.read(self._started_fd, 1) == b"1"
            if self.started:
                os.close(self._started_fd)
        return self.started

    def close(self) -> None:
        if not self.started:
            os.close(self._started_fd)


class Supervisor:
    def __init__(self, settings: ServerSettings, sockets: list[socket.socket]) -> None:
        self._settings = settings
        self._sockets = sockets
        self._readiness, self._readiness_fd = ReadinessBoard.create(len(sockets))
        self._workers: dict[int, _Worker] = {}
        self._restarts: deque[float] = deque()
        self._stop_deadline: float | None = None
        self._failed = False
        self.failure = "a worker exited uncleanly or was killed while the server stopped"  # once _failed

    def _spawn(self, index: int) -> _Worker:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        spec = WorkerSpec(
            settings=self._settings,
            index=index,
            count=len(self._sockets),
            listen_fd=self._sockets[index].fileno(),
            started_fd=write_fd,
            readiness_fd=self._readiness_fd,
            group=str(os.getpid()),
            supervisor_pid=os.getpid(),
        )
        try:
            return _Worker(spec, read_fd)
        finally:
            os.close(write_fd)

    def handle_signal(self, sig: int, frame: FrameType | None) -> None:
        if self._stop_deadline is None:
            logger.info("stopping workers", extra={"signal": signal.Signals(sig).name})
            self._begin_stop()
        elif sig != signal.SIGINT:
            return  # a second SIGTERM changes nothing; a second Ctrl-C forces the workers out
        self._signal_workers(sig)

    def _begin_stop(self) -> None:
        settings = self._settings
        self._stop_deadline = time.monotonic() + settings.drain_seconds + EXIT_GRACE_SECONDS
        # Our copies of the sockets must go, or a worker closing its listener would not close the socket:
        # new connections would queue where no one accepts them any more.
        for sock in self._sockets:
            sock.close()

    def _signal_workers(self, sig: int) -> None:
        for worker in self._workers.values():
            if worker.process.poll() is None:
                # One still starting may not have its handlers yet: SIGINT would print a KeyboardInterrupt
                # traceback into the JSON log, while SIGTERM's default action ends it quietly.
                worker.process.send_signal(sig if worker.started else signal.SIGTERM)

    def _fail(self, message: str, **fields: object) -> None:
        logger.error(message, extra=fields)
        if not self._failed:
            self.failure = message
        self._failed = True
        if self._stop_deadline is None:
            self._begin_stop()
            self._signal_workers(signal.SIGINT)  # at once: no load-balancer delay for a failing server

    def _on_exit(self, worker: _Worker, status: int) -> None:
        fields = {"worker": worker.index, "pid": worker.process.pid, "status": status}
        if self._stop_deadline is not None:
            if status != 0 and not (status == -signal.SIGTERM and not worker.started):
                self._failed = True
                logger.error("worker exited uncleanly", extra=fields)
            return
        if not worker.started:
            self._fail("worker exited before it listened; stopping the server", **fields)
            return
        now = time.monotonic()
        while self._restarts and self._restarts[0] < now - RESTART_WINDOW_SECONDS:
            self._restarts.popleft()
        if len(self._restarts) >= MAX_RESTARTS:
            self._fail(f"workers died {MAX_RESTARTS + 1} times within {RESTART_WINDOW_SECONDS:g} s; stopping", **fields)
            return
        self._restarts.append(now)
        logger.error("worker died; restarting it", extra=fields)
        self._start(worker.index)

    def _start(self, index: int) -> None:
        worker = self._workers[index] = self._spawn(index)
        if self._stop_deadline is not None:  # the signal came while it was being started, so it missed it
            worker.process.send_signal(signal.SIGTERM)

    def run(self) -> bool:
        """Start the workers and watch them until they have all exited; True when all went cleanly."""
        if self._stop_deadline is None:  # else a signal came first: nothing to start
            for index in range(len(self._sockets)):
                if self._stop_deadline is not None:  # a signal came meanwhile: our sockets are closed
                    break
                self._start(index)
        while self._workers:
            for worker in list(self._workers.values()):
                worker.poll_started()
                status = worker.process.poll()
                if status is None:
                    continue
                worker.close()
                self._readiness.set(worker.index, False)  # its last word may have been "ready"
                del self._workers[worker.index]
                self._on_exit(worker, status)
            if self._stop_deadline is not None and time.monotonic() > self._stop_deadline:
                for worker in self._workers.values():
                    logger.error("worker did not exit in time; killing it", extra={"worker": worker.index})
                    worker.process.kill()
                self._failed = True
                self._stop_deadline = float("inf")
            time.sleep(_POLL_SECONDS)
        return not self._failed


def supervise(settings: ServerSettings, count: int) -> None:
    """Serve with `count` worker processes until SIGTERM or Ctrl-C; blocking. WorkersFailed (a SystemExit(1))
    when workers fail (see the module docstring); OSError naming the port when one cannot be listened on."""
    configure_logging(settings.log_level)
    scan(settings.model_repository)  # fail before binding the port when there is nothing to serve
    try:
        sockets = bind_sockets(settings.host, settings.port, count)
    except OSError as exc:
        raise OSError(
            f"cannot listen on {settings.host}:{settings.port} with {count} workers: {exc.strerror}"
        ) from None
    port = sockets[0].getsockname()[1]
    supervisor = Supervisor(settings, sockets)
    metrics = None
    if settings.metrics_port:
        try:
            metrics, _ = start_http_server(
                settings.metrics_port, addr=settings.host, registry=pod_registry(str(os.getpid()), count)
            )
        except OSError as exc:
            for sock in sockets:
                sock.close()
            where = f"{settings.host}:{settings.metrics_port}"
            raise OSError(f"metrics_port: cannot listen on {where}: {exc.strerror}") from None
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, supervisor.handle_signal)
    scheme = "https" if settings.tls_cert_file else "http"
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    logger.info(f"running on {scheme}://{host}:{port} with {count} workers", extra={"workers": count})
    try:
        clean = supervisor.run()
    finally:
        if metrics is not None:
            metrics.shutdown()
            metrics.server_close()
    if not clean:
        raise WorkersFailed(supervisor.failure)
