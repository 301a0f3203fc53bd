"""POST /v2/models/{name}[/versions/{version}]/infer: the hot path.

Raw body in, bytes out: the body is read and decoded by hand (orjson, numpy views of binary data) and
checked completely against the signature in validation.py. A request takes its queue slot (max_queue_size)
only once its body has arrived and been decoded: a slow or stalled upload must not crowd out real work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import request_response

from . import openapi, served, tracing
from .body import receive_body
from .codec import encode_response
from .decoding import Received, RequestDecoder
from .errors import ServingError
from .feedback import Prediction, PredictionMemory
from .payload_log import PayloadLog
from .state import ServingState


class _RawRoute(APIRoute):
    """Documented in OpenAPI like any FastAPI route, but dispatched the way Starlette does it, without
    FastAPI's per-request parameter solving and exit stacks (a large share of a small model's request
    time): the endpoint gets the Request and the path parameters as they are. Our own body limits apply."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.app = request_response(self.get_route_handler())

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            return await endpoint(request, **request.path_params)

        return handler


def add_inference_routes(
    app: FastAPI, state: ServingState, payload_log: PayloadLog | None, predictions: PredictionMemory
) -> Callable[..., Coroutine[Any, Any, Response]]:
    """Register the inference routes (documented in OpenAPI); returns their endpoint for fast_path.py.
    Successful requests go to `payload_log` (None: off) and, when they carry an id, to `predictions`."""
    repository = state.repository
    audit = state.audit
    access_log = state.settings.access_log
    body_timeout = state.settings.request_body_timeout_seconds
    decoder = RequestDecoder(state.settings, state.large_decodes)
    trimmer = state.trimmer
    tracer = tracing.from_settings(state.settings)  # None unless MLGIT_SERVING_TRACING_ENDPOINT is set
    remember = predictions.capacity > 0

    async def infer(request: Request, model_name: str, model_version: str | None = None) -> Response:
        arrived = time.perf_counter()
        mv = repository.get(model_name, model_version)
        trace = None if tracer is None else tracer.begin(request.headers, request.scope["path"], model_name, mv.version)
        status = 500
        request_id = None
        received = Received()
        try:
            mv.require_ready()
            raw = await receive_body(request, mv.max_request_bytes, body_timeout)
            try:
                decoded = await decoder.decode(received, raw, request.headers, mv.signature, mv.max_request_bytes)
            finally:
                request_id = received.request_id  # known before validation, so that its errors name it
                del raw  # the decompressed body is all that is needed from here on
            with mv.runner.admission:
                names = [name for name, _ in decoded.outputs]
                arrays = await mv.runner.infer(decoded.inputs, names, trace)
                if mv.drift is not None:  # served inputs only; a few numpy calls (bench/monitoring/drift_cost.py)
                    mv.drift.observe(decoded.inputs)
                specs = mv.signature.outputs
                content, response_header_length = encode_response(
                    model_name,
                    mv.version,
                    request_id,
                    [(name, specs[name].datatype, arrays[name], binary) for name, binary in decoded.outputs],
                )
            status = 200
        except ServingError as exc:
            status = exc.status_code
            if trace is not None:  # the error response names the trace too
                exc.headers = {**(exc.headers or {}), "traceparent": trace.traceparent()}
            identity = getattr(request.state, "identity", None)
            served.log_refusal(request_id or request.headers.get("x-request-id"), mv, status, exc.message, identity)
            raise
        finally:
            elapsed = time.perf_counter() - arrived
            traceparent = None if trace is None else trace.finish(status)
            identity = getattr(request.state, "identity", None)
            served.finish(mv, status, elapsed, received.size, trimmer, access_log, request_id, identity)
        if audit.sampled():
            audit.record(
                request_id=request_id,
                model=model_name,
                version=mv.version,
                status=status,
                request=received.body,
                request_header_length=received.header_length,
                response=content,
                response_header_length=response_header_length,
            )
        if payload_log is not None and payload_log.sampled():
            payload_log.offer(
                request_id=request_id,
                model=model_name,
                version=mv.version,
                request=received.body,
                request_header_length=received.header_length,
                response=content,
                response_header_length=response_header_length,
            )
        if remember and request_id is not None:
            outputs = {name: (specs[name].datatype, arrays[name]) for name, _ in decoded.outputs}
            predictions.remember(model_name, request_id, Prediction(mv.version, outputs))
        if response_header_length is None:
            response = Response(content, media_type="application/json")
        else:
            response = Response(
                content,
                media_type="application/octet-stream",
                headers={"Inference-Header-Content-Length": str(response_header_length)},
            )
        if traceparent is not None:  # the server span's context, so that the client can find its trace
            response.headers["traceparent"] = traceparent
        return response

    extra = {
        "requestBody": {"required": True, "content": {"application/json": {"schema": openapi.INFERENCE_REQUEST}}},
        "parameters": [
            {
                "name": "Inference-Header-Content-Length",
                "in": "header",
                "required": False,
                "schema": {"type": "integer", "minimum": 1},
                "description": "Length of the JSON header when binary tensor data follows it.",
            }
        ],
    }
    responses = {
        200: openapi.json_body(openapi.INFERENCE_RESPONSE, "Inference result"),
        **openapi.errors(400, 404, 413, 415, 503),
    }
    for suffix in ("", "/versions/{model_version}"):
        app.router.add_api_route(
            f"/v2/models/{{model_name}}{suffix}/infer",
            infer,
            methods=["POST"],
            tags=["inference"],
            summary="Inference",
            openapi_extra=extra,
            responses=responses,
            route_class_override=_RawRoute,
        )
    return infer
