"""create_app(settings): the FastAPI application, with all state built here and held by the app."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from . import __version__
from .auth import AuthGuard, create_guard
from .docs import add_docs_routes, declare_bearer
from .errors import ServingError, error_response
from .fast_path import InferEndpoint, match_infer, serve_infer
from .feedback import FeedbackMetrics, PredictionMemory, add_feedback_routes
from .http_infer import add_inference_routes
from .http_meta import add_meta_routes
from .payload_log import PayloadLog, PayloadLogConfig
from .settings import ServerSettings
from .state import ServingState
from .ui_routes import add_ui_routes

logger = logging.getLogger(__name__)


class _ServingApp(FastAPI):
    """FastAPI, except that inference requests skip its middleware stack (see fast_path.py), and that
    authentication (auth.py) comes first, here at the edge, for every route that dispatch can reach."""

    infer_endpoint: InferEndpoint | None = None
    auth_guard: AuthGuard | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        identity = None
        guard = self.auth_guard
        if guard is not None and guard.applies(scope):
            try:
                identity = await guard.admit(scope)
            except ServingError as exc:
                await error_response(exc.message, exc.status_code, exc.headers)(scope, receive, send)
                return
        target = match_infer(scope) if self.infer_endpoint is not None else None
        if target is None:
            await super().__call__(scope, receive, send)
        else:
            if identity is not None:
                guard.metrics.inference(target[0], identity)
            await serve_infer(self.infer_endpoint, target, scope, receive, send)


def _install_error_handlers(app: FastAPI) -> None:
    async def serving_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServingError)
        return error_response(exc.message, exc.status_code, exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(str(exc.detail), exc.status_code, exc.headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return error_response(problems, 400)

    async def unexpected_error(request: Request, exc: Exception) -> Response:
        logger.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
        return error_response("internal server error", 500)

    app.add_exception_handler(ServingError, serving_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)


def _payload_log(settings: ServerSettings, state: ServingState) -> PayloadLog | None:
    if settings.payload_log_url is None:
        return None
    config = PayloadLogConfig(
        url=settings.payload_log_url,
        sample_rate=settings.payload_log_sample_rate,
        redact=frozenset(settings.payload_log_redact),
        batch_size=settings.payload_log_batch_size,
        queue_size=settings.payload_log_queue_size,
        flush_seconds=settings.payload_log_flush_seconds,
        timeout_seconds=settings.payload_log_timeout_seconds,
    )
    return PayloadLog(config, state.metrics.registry)


def create_app(settings: ServerSettings) -> FastAPI:
    """Build the server for one model repository. Models load in the background after startup, so that
    liveness answers at once and readiness turns true when every model version is loaded and warmed up.
    Raises ConfigurationError when the authentication settings cannot work (before any port is bound)."""
    state = ServingState(settings)
    guard = create_guard(settings, state.metrics.registry, state.repository)
    payload_log = _payload_log(settings, state)
    predictions = PredictionMemory(settings.feedback_memory, settings.feedback_memory_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.repository.discover()
        grpc = None
        if settings.grpc_port:
            # Imported only when used: its stubs register the protobuf package `inference`, which a client's
            # own copy (tritonclient.grpc) in the same process would collide with. gRPC's core logs plain-text
            # lines to stderr that would break the JSON log stream; its errors reach us as exceptions anyway
            # (GRPC_VERBOSITY=debug still shows them). It reads the variable when first imported.
            os.environ.setdefault("GRPC_VERBOSITY", "NONE")
            from .grpc_server import start_grpc

            grpc = await start_grpc(state, settings, guard, payload_log, predictions)
        app.state.grpc = grpc  # server.py stops it with the HTTP listener on SIGTERM
        loading = asyncio.create_task(state.repository.load_all(), name="load-models")
        if payload_log is not None:
            payload_log.start()
        yield
        if grpc is not None:  # its calls in progress finish before the models they use unload
            await grpc.stop(settings.drain_seconds)
        if payload_log is not None:
            await payload_log.stop()
        if not loading.done():
            loading.cancel()
        await asyncio.gather(loading, return_exceptions=True)
        await state.repository.unload_all()

    app = _ServingApp(
        title="mlgit serving runtime",
        version=__version__,
        description="Open Inference Protocol v2 (REST) for ONNX models, with the binary tensor data extension.",
        lifespan=lifespan,
        docs_url=None,  # docs.py serves it with shipped assets
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs else None,
    )
    app.state.serving = state
    app.auth_guard = guard
    _install_error_handlers(app)
    # first: the router tries routes in order
    app.infer_endpoint = add_inference_routes(app, state, payload_log, predictions)
    add_feedback_routes(app, state.repository, predictions, FeedbackMetrics(state.metrics.registry))
    add_meta_routes(app, state)
    if settings.docs:
        add_docs_routes(app)
        if guard is not None:
            declare_bearer(app)
    if settings.ui:
        add_ui_routes(app, state)
    return app
