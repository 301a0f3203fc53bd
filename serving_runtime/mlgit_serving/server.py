"""Running the server: `serve()` for `mlgit serve`, `main()` for the `mlgit-serving` console script.

Shutdown on SIGTERM or Ctrl-C: readiness fails at once; after SIGTERM requests keep being accepted for
shutdown_delay_seconds (load balancers need a moment to notice); then the listener closes, in-flight and
queued requests finish, and the process exits, all within drain_seconds. A second Ctrl-C forces exit.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from .app import create_app
from .errors import RepositoryError
from .logs import configure_logging
from .memory import freeze_startup_objects, keep_large_blocks
from .repository import scan
from .settings import ServerSettings
from .state import ServingState

logger = logging.getLogger(__name__)


class _DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: ServingState) -> None:
        super().__init__(config)
        self._state = state
        self._exit_at: float | None = None

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


def run(settings: ServerSettings) -> None:
    """Serve until SIGTERM or Ctrl-C, then drain; blocking."""
    configure_logging(settings.log_level)
    keep_large_blocks()
    scan(settings.model_repository)  # fail before binding the port when there is nothing to serve
    app = create_app(settings)
    freeze_startup_objects()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=settings.drain_seconds,
    )
    _DrainingServer(config, app.state.serving).run()


def serve(model_repository: Path, host: str, port: int, **overrides: Any) -> None:
    """Run the server in this process (what `mlgit serve` calls). `overrides` are ServerSettings fields;
    fields not given come from MLGIT_SERVING_* environment variables, then defaults. Raises
    RepositoryError when the model repository is missing or empty, pydantic's ValidationError for bad
    settings."""
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
    except RepositoryError as exc:
        logger.error(str(exc))
        sys.exit(1)
