"""inference.GRPCInferenceService: the OIP v2 gRPC API over the same models, runners and checks as REST.

Every RPC runs on the server's event loop, so ModelInfer joins the very batcher REST requests join (a batch
may mix both). A refusal is the ServingError REST would raise, sent as the matching gRPC status with the
same message: 400 INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND,
413 RESOURCE_EXHAUSTED, 503 UNAVAILABLE (the metrics count the HTTP status, so one series covers both
protocols). Authentication (AuthInterceptor) reads the `authorization` metadata like the header, before the
call's message is read; ServerLive and ServerReady are open like /v2/health/*. A call the client cancels
is counted and logged as 499, as REST counts a client that goes away. A served ModelInfer is sampled into
the audit log and the payload log, as the REST body it stands for (grpc_codec.rest_body), and remembered
by its id for feedback, as REST's are: switching protocol dodges none of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, NoReturn

import grpc

from . import __version__, served, tracing
from .auth import AuthGuard
from .codec import encode_response
from .decoding import OFFLOAD_BYTES
from .errors import BadRequest, PayloadTooLarge, ServingError
from .feedback import Prediction, PredictionMemory
from .grpc_codec import decode_infer_request, infer_response, rest_body
from .http_meta import EXTENSIONS
from .model_version import ModelVersion
from .payload_log import PayloadLog
from .proto import grpc_predict_v2_pb2 as pb
from .proto import grpc_predict_v2_pb2_grpc as pb_grpc
from .settings import ServerSettings
from .state import ServingState
from .validation import DecodedRequest, RequestLimits

logger = logging.getLogger("mlgit_serving.requests")

SERVICE = "inference.GRPCInferenceService"
OPEN_METHODS = frozenset({"ServerLive", "ServerReady"})
STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
CLIENT_CLOSED = 499  # nginx's status for a client that went away, counted as REST counts one
# The caller's identity, set by AuthInterceptor for the call's handler (None without authentication).
_identity: ContextVar[str | None] = ContextVar("grpc_identity", default=None)


def _heavy(request: Any, size: int) -> bool:
    """Typed contents and BYTES are decoded element by element: large ones go to a thread, as REST's do
    (decoding.py's threshold)."""
    if size < OFFLOAD_BYTES:
        return False
    return not request.raw_input_contents or any(t.datatype == "BYTES" for t in request.inputs)


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(
        self,
        state: ServingState,
        settings: ServerSettings,
        guard: AuthGuard | None,
        payload_log: PayloadLog | None,
        predictions: PredictionMemory,
    ) -> None:
        self._state = state
        self._payload_log = payload_log
        self._predictions = predictions
        self._repository = state.repository
        self._guard = guard
        self._limits = RequestLimits(settings.max_bytes_elements, settings.max_request_id_length)
        self._access_log = settings.access_log
        self._tracer = tracing.from_settings(settings)

    async def ServerLive(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerReadyResponse(ready=not self._state.not_ready_reasons())

    async def ServerMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.ServerMetadataResponse(name="mlgit-serving", version=__version__, extensions=EXTENSIONS)

    async def ModelReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        # An unknown model or version is simply not ready here, as tritonclient's is_model_ready expects.
        try:
            ready = self._repository.get(request.name, request.version or None).ready
        except ServingError:
            ready = False
        return pb.ModelReadyResponse(ready=ready)

    async def ModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            mv = self._repository.get(request.name, request.version or None)
            versions = [v.version for v in self._repository.versions(request.name)]
        except ServingError as exc:
            await _abort(context, exc)
        metadata = mv.metadata(versions)
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata["versions"],
            platform=metadata["platform"],
            # The proto has no "any rank" (REST's null shape): an unknown rank is sent as an empty shape.
            inputs=[tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"] or []) for t in metadata["inputs"]],
            outputs=[
                tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"] or []) for t in metadata["outputs"]
            ],
        )

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        arrived = time.perf_counter()
        identity = _identity.get()
        metadata = dict(context.invocation_metadata() or ())
        try:
            mv = self._repository.get(request.model_name, request.model_version or None)
        except ServingError as exc:
            await _abort(context, exc)
        if identity is not None and self._guard is not None:
            self._guard.metrics.inference(mv.name, identity)
        trace = None
        if self._tracer is not None:
            trace = self._tracer.begin(metadata, f"/{SERVICE}/ModelInfer", mv.name, mv.version)
        request_id = request.id or None
        size = request.ByteSize()
        error: ServingError | None = None
        response = None

        def failed(status: int, message: str) -> None:
            served.log_refusal(request_id or metadata.get("x-request-id"), mv, status, message, identity, "grpc")

        try:
            response = await self._infer(mv, request, size, trace)
        except ServingError as exc:
            error = exc
            failed(exc.status_code, exc.message)
        except asyncio.CancelledError:  # the client cancelled (or its deadline passed): no status to send
            self._finish(mv, CLIENT_CLOSED, arrived, request_id, identity, size)
            if trace is not None:
                trace.finish(CLIENT_CLOSED)
            failed(CLIENT_CLOSED, "the client cancelled the call")
            raise
        except Exception as exc:
            logger.error("unhandled error", exc_info=exc, extra={"path": f"/{SERVICE}/ModelInfer"})
            error = ServingError("internal server error")
        status = 200 if error is None else error.status_code
        self._finish(mv, status, arrived, request_id, identity, size)
        if trace is not None:  # the server span's context, so that the client can find its trace
            await context.send_initial_metadata((("traceparent", trace.finish(status)),))
        if error is not None:
            await _abort(context, error)
        return response

    def _finish(
        self, mv: ModelVersion, status: int, arrived: float, request_id: str | None, identity: str | None, size: int
    ) -> None:
        """Count and log a finished call, and give a large request's memory back (as REST does)."""
        elapsed = time.perf_counter() - arrived
        served.finish(mv, status, elapsed, size, self._state.trimmer, self._access_log, request_id, identity, "grpc")

    async def _infer(self, mv: ModelVersion, request: Any, size: int, trace: tracing.RequestTrace | None) -> Any:
        mv.require_ready()
        if size > mv.max_request_bytes:
            raise PayloadTooLarge(f"request body exceeds this model's max_request_bytes ({mv.max_request_bytes})")
        if _heavy(request, size):
            async with self._state.large_decodes:  # REST's large decodes take turns with these
                decoded = await asyncio.to_thread(decode_infer_request, request, mv.signature, self._limits)
        else:
            decoded = decode_infer_request(request, mv.signature, self._limits)
        with mv.runner.admission:
            names = [name for name, _ in decoded.outputs]
            arrays = await mv.runner.infer(decoded.inputs, names, trace)
            if mv.drift is not None:  # served inputs only, as REST does
                mv.drift.observe(decoded.inputs)
        specs = mv.signature.outputs
        outputs = [(name, specs[name].datatype, arrays[name]) for name in names]
        self._record(mv, request, decoded, outputs)
        return infer_response(mv.name, mv.version, decoded.id, outputs)

    def _record(
        self, mv: ModelVersion, request: Any, decoded: DecodedRequest, outputs: list[tuple[str, str, Any]]
    ) -> None:
        """What REST does with a served request: the audit and payload log samples, and the prediction kept
        for feedback. The bodies are the REST ones the call stands for, with every output as binary tensor
        data (gRPC sends them raw); they are built only for a sampled call."""
        audit, payload_log = self._state.audit, self._payload_log
        audited = audit.sampled()
        offered = payload_log is not None and payload_log.sampled()
        if audited or offered:
            body, header_length = rest_body(request, self._limits)
            response, response_header_length = encode_response(
                mv.name, mv.version, decoded.id, [(name, datatype, array, True) for name, datatype, array in outputs]
            )
            logged = {
                "request_id": decoded.id,
                "model": mv.name,
                "version": mv.version,
                "request": body,
                "request_header_length": header_length,
                "response": response,
                "response_header_length": response_header_length,
            }
            if audited:
                audit.record(status=200, **logged)
            if offered and payload_log is not None:
                payload_log.offer(**logged)
        if self._predictions.capacity > 0 and decoded.id is not None:
            kept = {name: (datatype, array) for name, datatype, array in outputs}
            self._predictions.remember(mv.name, decoded.id, Prediction(mv.version, kept))


async def _abort(context: grpc.aio.ServicerContext, exc: ServingError) -> NoReturn:
    """End the call (context.abort raises) with the gRPC status matching exc's HTTP status; REST's headers
    (WWW-Authenticate, Retry-After) become trailing metadata."""
    trailers = tuple((name.lower(), value) for name, value in (exc.headers or {}).items())
    await context.abort(STATUS_CODES.get(exc.status_code, grpc.StatusCode.INTERNAL), exc.message, trailers)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates a call from its metadata before its message is read. A unary handler gets its message
    whole before it runs: 96 unauthenticated 16 MiB calls held 1.3 GB until refused. Each guarded method's
    handler is served here as a client-streaming one that checks the credential first and reads the one
    message only once the caller is admitted; a refused call's message is never read."""

    def __init__(self, guard: AuthGuard) -> None:
        self._guard = guard

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method.rsplit("/", 1)[-1]
        if handler is None or handler.unary_unary is None or method in OPEN_METHODS:
            return handler
        unary, guard = handler.unary_unary, self._guard

        async def admitted(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            _identity.set(await _authenticate(guard, method, context))
            request = await context.read()
            if request is grpc.aio.EOF:
                await _abort(context, BadRequest("the call carried no request message"))
            return await unary(request, context)

        return grpc.stream_unary_rpc_method_handler(
            admitted,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


async def _authenticate(guard: AuthGuard, method: str, context: grpc.aio.ServicerContext) -> str:
    """The caller's identity; aborts the call when it is refused."""
    # The guard reads an ASGI-like scope: the credential, and the path and client its refusal log names.
    headers = [
        (k.encode("latin-1"), v if isinstance(v, bytes) else v.encode("latin-1"))  # `-bin` keys carry bytes
        for k, v in context.invocation_metadata() or ()
    ]
    scope: dict[str, Any] = {"type": "grpc", "path": f"/{SERVICE}/{method}", "headers": headers}
    scope["client"] = (context.peer(), 0)
    try:
        return await guard.admit(scope)
    except ServingError as exc:
        await _abort(context, exc)
