"""OIP v2 server and model metadata, health and readiness endpoints, and /metrics."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from . import __version__, openapi
from .errors import Unavailable
from .state import ServingState

EXTENSIONS = ["binary_tensor_data"]


def json_response(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def add_meta_routes(app: FastAPI, state: ServingState) -> None:
    repository = state.repository

    async def server_metadata() -> Response:
        return json_response({"name": "mlgit-serving", "version": __version__, "extensions": EXTENSIONS})

    async def live() -> Response:
        return json_response({"live": True})

    async def ready() -> Response:
        reasons = state.not_ready_reasons()
        if reasons:
            raise Unavailable("not ready: " + "; ".join(reasons), retry_after_seconds=5)
        return json_response({"ready": True})

    async def model_metadata(model_name: str, model_version: str | None = None) -> Response:
        mv = repository.get(model_name, model_version)
        versions = [v.version for v in repository.versions(model_name)]
        return json_response(mv.metadata(versions))

    async def model_ready(model_name: str, model_version: str | None = None) -> Response:
        mv = repository.get(model_name, model_version)
        mv.require_ready()
        return json_response({"name": mv.name, "version": mv.version, "ready": True})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(state.metrics.scrape_registry), media_type=CONTENT_TYPE_LATEST)

    ok = {"type": "object", "additionalProperties": True}
    app.add_api_route(
        "/v2",
        server_metadata,
        methods=["GET"],
        tags=["server"],
        summary="Server metadata",
        responses={200: openapi.json_body(openapi.SERVER_METADATA, "Server metadata")},
    )
    app.add_api_route(
        "/v2/health/live",
        live,
        methods=["GET"],
        tags=["health"],
        summary="Liveness",
        responses={200: openapi.json_body(ok, "Live")},
    )
    app.add_api_route(
        "/v2/health/ready",
        ready,
        methods=["GET"],
        tags=["health"],
        summary="Readiness",
        responses={200: openapi.json_body(ok, "Ready"), **openapi.errors(503)},
    )
    for suffix in ("", "/versions/{model_version}"):
        app.add_api_route(
            f"/v2/models/{{model_name}}{suffix}",
            model_metadata,
            methods=["GET"],
            tags=["models"],
            summary="Model metadata",
            responses={200: openapi.json_body(openapi.MODEL_METADATA, "Model metadata"), **openapi.errors(404)},
        )
        app.add_api_route(
            f"/v2/models/{{model_name}}{suffix}/ready",
            model_ready,
            methods=["GET"],
            tags=["models"],
            summary="Model readiness",
            responses={200: openapi.json_body(ok, "Ready"), **openapi.errors(404, 503)},
        )
    if not state.settings.metrics_port:  # else served only on that port (server.py), never on the public one
        app.add_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
