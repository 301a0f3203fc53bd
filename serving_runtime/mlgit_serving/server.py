"""Running the server: `serve()` for `mlgit serve`, `main()` for the `mlgit-serving` console script.

Shutdown on SIGTERM or Ctrl-C: readiness fails at once; after SIGTERM requests keep being accepted for
shutdown_delay_seconds (load balancers need a moment to notice); then the listener closes, in-flight and
queued requests finish, and the process exits, all within drain_seconds. A second Ctrl-C forces exit.

With metrics_port set, /metrics is served by prometheus_client's own HTTP server on a thread: a scrape
then answers while the event loop is busy (a slow batch, a hostile body), which is when it matters.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any
from wsgiref.simple_server import WSGIServer

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, start_http_server
from pydantic import ValidationError

from .app import create_app
from .connections import ConnectionTable, connection_cap, raise_open_file_limit
from .cpus import worker_count
from .errors import ConfigurationError, RepositoryError
from .http_protocol import HeadLimits, limited_protocol
from .logs import configure_logging
from .memory import freeze_startup_objects, keep_large_blocks
from .repository import scan
from .settings import ServerSettings
from .state import ServingState
from .supervisor import supervise

logger = logging.getLogger(__name__)


class _DrainingServer(uvicorn.Server):
    def __init__(
        self, config: uvicorn.Config, state: ServingState, on_started: Callable[[], None] | None = None
    ) -> None:
        super().__init__(config)
        self._state = state
        self._exit_at: float | None = None
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_started is not None:
            self._on_started()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Unlike uvicorn's own handler, the signal is not re-raised after shutdown: as PID 1 in a container
        # and inside `mlgit serve` a clean exit status is wanted, not death by the signal.
        if self._exit_at is not None:
            if sig == signal.SIGINT:
                self.force_exit = True
            return
        settings = self._state.settings
        # Only an orchestrator's SIGTERM waits for load balancers; a person's Ctrl-C stops at once.
        delay = 0.0 if sig == signal.SIGINT else min(settings.shutdown_delay_seconds, settings.drain_seconds)
        self._state.begin_drain()
        self._exit_at = time.monotonic() + delay
        self.config.timeout_graceful_shutdown = max(settings.drain_seconds - delay, 0.1)
        logger.info(
            "shutting down",
            extra={"signal": signal.Signals(sig).name, "accepting_for_s": delay, "drain_s": settings.drain_seconds},
        )
        if delay == 0:
            self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self._exit_at is not None and time.monotonic() >= self._exit_at:
            self.should_exit = True
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # gRPC (grpc_server.py) stops taking calls when HTTP does, with the same grace; the app's lifespan
        # shutdown then waits for its calls before the models unload.
        grpc = getattr(self.config.app.state, "grpc", None)
        if grpc is not None:
            grpc.begin_stop(self.config.timeout_graceful_shutdown)
        await super().shutdown(sockets)


def uvicorn_config(app: FastAPI, settings: ServerSettings) -> uvicorn.Config:
    """uvicorn's configuration for `app`: the connection limits, keep-alive timeout and TLS of `settings`."""
    table = ConnectionTable(connection_cap(settings.max_connections), app.state.serving.metrics.registry)
    protocol = limited_protocol(HeadLimits(settings.max_header_bytes, settings.header_timeout_seconds), table)
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=protocol,
        ws="none",  # no WebSocket endpoint: an upgrade request is served as plain HTTP
        timeout_keep_alive=settings.keep_alive_timeout_seconds,  # type: ignore[arg-type]  # a float works
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=settings.drain_seconds,
    )


def start_metrics_listener(host: str, port: int, registry: CollectorRegistry) -> WSGIServer:
    """/metrics (any path, in fact) on host:port from a thread of its own; shutdown() stops it."""
    server, _ = start_http_server(port, addr=host, registry=registry)
    return server


def check_grpc_port(host: str, port: int) -> None:
    """Raise OSError naming grpc_port when another program holds it. Each process binds it itself
    (grpc_server.py; workers with SO_REUSEPORT, so that they share it), inside the app's startup: too late
    for a clear message. Called once, before any worker starts. The probe itself does not set SO_REUSEPORT:
    with it, it would succeed beside another server of the same user holding the port with SO_REUSEPORT,
    which the kernel would then let this one share, taking part of its calls."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a just-stopped server's TIME_WAIT is no owner
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(f"grpc_port: cannot listen on {host}:{port}: {exc.strerror}") from None


def run(settings: ServerSettings) -> None:
    """Serve until SIGTERM or Ctrl-C, then drain; blocking. With several workers (settings.workers) this
    process supervises them (supervisor.py) and serves nothing itself."""
    if settings.grpc_port:
        configure_logging(settings.log_level)  # the refusal is a JSON line like every other
        check_grpc_port(settings.host, settings.grpc_port)
    count = worker_count(settings.workers)
    if count > 1:
        supervise(settings, count)
    else:
        run_process(settings)


def run_process(
    settings: ServerSettings,
    sockets: list[socket.socket] | None = None,
    prepare: Callable[[FastAPI], None] | None = None,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Serve in this process: on `sockets` (a worker's, already bound) or settings.host/port. `prepare` sees
    the app before it starts; `on_started` is called once it listens."""
    configure_logging(settings.log_level)
    keep_large_blocks()
    scan(settings.model_repository)  # fail before binding the port when there is nothing to serve
    raise_open_file_limit()  # before the connection cap is derived from it
    app = create_app(settings)
    if prepare is not None:
        prepare(app)
    freeze_startup_objects()
    config = uvicorn_config(app, settings)
    config.load()  # a bad certificate or key fails here, before any port is bound
    state: ServingState = app.state.serving
    metrics = (
        start_metrics_listener(settings.host, settings.metrics_port, state.metrics.registry)
        if settings.metrics_port and sockets is None  # a worker's supervisor serves it, for every worker
        else None
    )
    try:
        _DrainingServer(config, state, on_started).run(sockets)
    finally:
        if metrics is not None:
            metrics.shutdown()
            metrics.server_close()


def serve(model_repository: Path, host: str, port: int, **overrides: Any) -> None:
    """Run the server in this process (what `mlgit serve` calls). `overrides` are ServerSettings fields;
    fields not given come from MLGIT_SERVING_* environment variables, then defaults. Raises
    RepositoryError when the model repository is missing or empty, pydantic's ValidationError for bad
    settings, ConfigurationError for settings that cannot work together (api-key auth without a key)."""
    run(ServerSettings(model_repository=model_repository, host=host, port=port, **overrides))


def main(argv: list[str] | None = None) -> None:
    """`mlgit-serving`: settings come from MLGIT_SERVING_* variables; flags override them."""
    parser = argparse.ArgumentParser(prog="mlgit-serving", description=__doc__.splitlines()[0])
    parser.add_argument("--model-repository", type=Path, help="default: $MLGIT_SERVING_MODEL_REPOSITORY or /models")
    parser.add_argument("--host", help="default: $MLGIT_SERVING_HOST or 0.0.0.0")
    parser.add_argument("--port", type=int, help="default: $MLGIT_SERVING_PORT or 8080")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    try:
        run(ServerSettings(**overrides))
    # OSError: a TLS file or the metrics port; ConfigurationError: e.g. api-key auth without a key
    except (RepositoryError, ConfigurationError, ValidationError, OSError) as exc:
        logger.error(str(exc))
        sys.exit(1)
