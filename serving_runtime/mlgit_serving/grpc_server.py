"""The gRPC listener (MLGIT_SERVING_GRPC_PORT): a grpc.aio server on the event loop that serves REST.

Same loop, not a thread of its own: ModelInfer then awaits the same batcher and admission objects as REST
(asyncio objects belong to one loop), with no hand-over between threads per request. With several worker
processes the port is bound with SO_REUSEPORT, so that each runs start_grpc() on the same port and the
kernel spreads connections over them, as it does for their HTTP listeners; server.check_grpc_port has made
sure beforehand that no other server holds it. A lone process binds it exclusively.

Limits: at most max_connections calls at once in the process (the bound REST's connection cap puts on
requests in flight; grpc refuses more with RESOURCE_EXHAUSTED), at most MAX_STREAMS of them on one
connection; a message may be as large as the largest model's max_request_bytes (grpc refuses larger ones with
RESOURCE_EXHAUSTED before any handler runs; ModelInfer then checks the model's own limit), metadata as large
as max_header_bytes; an idle connection is closed after keep_alive_timeout_seconds. With tls_cert_file set,
gRPC speaks TLS with the same certificate as HTTPS.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from .auth import AuthGuard
from .cpus import worker_count
from .errors import ModelLoadError
from .feedback import PredictionMemory
from .grpc_service import AuthInterceptor, InferenceServicer
from .payload_log import PayloadLog
from .proto import grpc_predict_v2_pb2_grpc as pb_grpc
from .repository import read_settings, scan
from .settings import ServerSettings
from .state import ServingState

logger = logging.getLogger(__name__)

# Calls in progress on one HTTP/2 connection (the common default of HTTP/2 servers: nginx, Go).
MAX_STREAMS = 100


class GrpcListener:
    """A started gRPC server; stop() is idempotent, so the shutdown signal and the lifespan may both call it."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self.server = server
        self._stopping: asyncio.Task[None] | None = None

    def begin_stop(self, grace: float) -> None:
        """Refuse new calls from now on; calls in progress get `grace` seconds to finish."""
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(self.server.stop(grace), name="grpc-stop")

    async def stop(self, grace: float) -> None:
        """begin_stop, then wait until every call has finished or been cancelled."""
        self.begin_stop(grace)
        assert self._stopping is not None
        await self._stopping


def _largest_request(settings: ServerSettings) -> int:
    """The largest max_request_bytes of any model (a model whose settings cannot be read fails to load anyway)."""
    limits = []
    for directory in scan(settings.model_repository):
        try:
            limits.append(read_settings(directory).max_request_bytes)
        except ModelLoadError:
            continue
    return max(limits, default=0) or 4 * 1024 * 1024  # grpc's own default when no model can be served


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _credentials(settings: ServerSettings) -> grpc.ServerCredentials | None:
    if settings.tls_cert_file is None:
        return None
    chain = settings.tls_cert_file.read_bytes()
    key = settings.tls_key_file.read_bytes() if settings.tls_key_file is not None else chain
    return grpc.ssl_server_credentials([(key, chain)])


async def start_grpc(
    state: ServingState,
    settings: ServerSettings,
    guard: AuthGuard | None,
    payload_log: PayloadLog | None,
    predictions: PredictionMemory,
) -> GrpcListener:
    """Serve inference.GRPCInferenceService on settings.grpc_port from the running event loop (call it once
    per worker process, after the repository is discovered), sharing REST's payload log and prediction
    memory. Raises OSError when the port cannot be bound."""
    options = [
        ("grpc.so_reuseport", int(worker_count(settings.workers) > 1)),
        ("grpc.max_receive_message_length", _largest_request(settings)),
        ("grpc.max_send_message_length", -1),  # responses are not limited over REST either
        ("grpc.max_metadata_size", settings.max_header_bytes),
        ("grpc.max_connection_idle_ms", int(settings.keep_alive_timeout_seconds * 1000)),
        ("grpc.max_concurrent_streams", MAX_STREAMS),
    ]
    server = grpc.aio.server(
        options=options,
        interceptors=[] if guard is None else [AuthInterceptor(guard)],
        maximum_concurrent_rpcs=settings.max_connections,
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(
        InferenceServicer(state, settings, guard, payload_log, predictions), server
    )
    address = _address(settings.host, settings.grpc_port)
    credentials = _credentials(settings)
    try:
        if credentials is None:
            server.add_insecure_port(address)
        else:
            server.add_secure_port(address, credentials)
    except RuntimeError as exc:  # grpc's way of saying the address is in use or not ours
        raise OSError(f"grpc_port: cannot listen on {address}: {exc}") from None
    await server.start()
    logger.info("gRPC listening", extra={"address": address, "tls": credentials is not None})
    return GrpcListener(server)
