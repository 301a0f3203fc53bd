"""Process settings (environment, prefix MLGIT_SERVING_), as docs/contracts.md describes them.

The per-model settings (model-settings.json, written by `mlgit render`) are the contract in model_settings.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .cpus import MAX_WORKERS


class ServerSettings(BaseSettings):
    """Settings of the server process. Precedence: `serve()` keyword arguments > environment > default."""

    model_config = SettingsConfigDict(env_prefix="MLGIT_SERVING_", extra="forbid")

    model_repository: Path = Field(Path("/models"), description="Root of the model repository.")
    host: str = Field("0.0.0.0", description="Address to listen on.")
    port: int = Field(8080, ge=0, le=65535, description="Port to listen on (0 picks a free one).")
    workers: Annotated[int, Field(ge=1, le=MAX_WORKERS)] | Literal["auto"] = Field(
        1,
        description="Server processes, each with its own copy of every model, sharing the port (SO_REUSEPORT): "
        "throughput grows with the pod's CPUs, memory with the number of copies. `auto`: the CPUs the container "
        f"may use (its cgroup CPU quota, else the CPUs this process may run on). At most {MAX_WORKERS}. See "
        "serving_runtime/README.md.",
    )

    @field_validator("workers", mode="before")
    @classmethod
    def _workers_count_or_auto(cls, value: object) -> object:
        # One message instead of one per member of the union (pydantic names them by internal type names).
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_WORKERS):
            return value
        raise ValueError(f"{value!r}: give a whole number from 1 to {MAX_WORKERS}, or auto")

    drain_seconds: float = Field(
        20.0, ge=0, description="Longest a SIGTERM waits for in-flight and queued requests before exiting."
    )
    shutdown_delay_seconds: float = Field(
        0.0,
        ge=0,
        description="After SIGTERM (not Ctrl-C), keep accepting requests (while /v2/health/ready says 503) "
        "this long so that load balancers stop routing here first; counted within drain_seconds.",
    )
    request_body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Longest an inference request's body may take to arrive before a 408. A body is read "
        "before the request takes a queue slot (max_queue_size): a stalled upload holds none.",
    )
    max_header_bytes: int = Field(
        32768,
        ge=1024,
        description="Cap on a request's head (request target, header names and values): a larger one is "
        "answered 431 and its connection closed. A partial head holds up to this much memory per connection.",
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A request's head must arrive within this of the connection opening, or of its first byte "
        "on a kept-alive connection, else the connection is closed (with a 408 when part of the head came).",
    )
    keep_alive_timeout_seconds: float = Field(
        75.0,
        gt=0,
        description="A keep-alive connection on which nothing arrives for this long is closed. Longer than the "
        "proxies' upstream keep-alive (ingress-nginx and Envoy: 60 s), so that a proxy never reuses a connection "
        "the server is closing (a 502); idle connections past the cap are evicted first anyway.",
    )
    max_connections: int = Field(
        2048,
        ge=1,
        description="Cap on open connections, lowered to the open-file limit less a reserve. When full, a "
        "new connection evicts the least recently active one that is idle or still sending its head (never "
        "one mid-request), so readiness keeps answering; with none to evict the newcomer is closed. Over gRPC: "
        "at most this many calls at once (more: RESOURCE_EXHAUSTED).",
    )
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="0: /metrics on the main port. N: /metrics only on port N (plain HTTP, on its own "
        "thread so scrapes answer while the event loop is busy), not on the main port.",
    )
    grpc_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="0: no gRPC. N: the OIP v2 gRPC API (inference.GRPCInferenceService) on port N too, with the "
        "same models, batching, limits and authentication as REST (TLS too, when tls_cert_file is set).",
    )
    tls_cert_file: FilePath | None = Field(
        None, description="PEM certificate (chain) to serve HTTPS on the main port; the key may be in it too."
    )
    tls_key_file: FilePath | None = Field(None, description="PEM private key of tls_cert_file.")

    @model_validator(mode="after")
    def _check_listeners(self) -> ServerSettings:
        if self.tls_key_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_key_file is set but tls_cert_file is not: give the certificate too")
        if self.metrics_port and self.metrics_port == self.port:
            raise ValueError(f"metrics_port: {self.metrics_port} is also the main port; choose another")
        if self.grpc_port and self.grpc_port in (self.port, self.metrics_port):
            raise ValueError(f"grpc_port: {self.grpc_port} is also the main or metrics port; choose another")
        return self

    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    auth_mode: Literal["none", "api-key", "oidc"] = Field(
        "none",
        description="Who may call every endpoint but /v2/health/* and /metrics: anyone (none), a client "
        "sending `Authorization: Bearer <key>` with a configured API key (api-key), or a bearer JWT that "
        "the OIDC issuer signed for this audience (oidc).",
    )
    api_keys: SecretStr | None = Field(
        None, description="api-key mode: comma-separated keys; their ids are key-1, key-2, ... in order."
    )
    api_keys_dir: Path | None = Field(
        None,
        description="api-key mode: a directory holding one key per file, the file name being its id (a "
        "mounted Secret); names starting with '.' are skipped; re-read when it changes.",
    )
    oidc_issuer: str | None = Field(None, description="oidc mode: the `iss` tokens must carry (required).")
    oidc_audience: str | None = Field(None, description="oidc mode: a value tokens' `aud` must hold (required).")
    oidc_jwks_url: str | None = Field(
        None, description="oidc mode: the signing keys; default: jwks_uri of the issuer's openid-configuration."
    )
    oidc_required_scopes: Annotated[list[str], NoDecode] = Field(
        [], description="oidc mode: comma-separated scopes every token needs (`scope` or `scp` claim), else 403."
    )
    oidc_required_claims: dict[str, Any] = Field(
        {},
        description="oidc mode: JSON object claim -> value every token needs (equal, or among the claim's "
        "values when it is a list), else 403.",
    )
    oidc_leeway_seconds: float = Field(60.0, ge=0, description="oidc mode: clock skew allowed on exp/nbf/iat.")
    docs: bool = Field(True, description="Serve /docs (Swagger UI, shipped with the runtime) and /openapi.json.")
    ui: bool = Field(
        True,
        description="Serve /ui/, a page to try the models (its data endpoints /ui/api/* need a credential under "
        "auth, as /v2 does).",
    )

    @field_validator("oidc_required_scopes", mode="before")
    @classmethod
    def _split_scopes(cls, value: object) -> object:
        """The environment gives one comma-separated string; Python callers may pass a list."""
        return [scope.strip() for scope in value.split(",") if scope.strip()] if isinstance(value, str) else value

    access_log: bool = Field(False, description="Log one JSON line per inference request (errors always are).")
    versions: Annotated[list[str], NoDecode] = Field(
        [],
        description="Comma-separated model versions to load and serve; the others on disk are not loaded and "
        "answer 404, over REST and gRPC alike. Empty: every version directory.",
    )
    default_version: str | None = Field(
        None,
        description="The version the unversioned URLs (/v2/models/<name>/...) serve; it must be loaded. Unset: "
        "the highest integer version (else the last by name).",
    )

    @field_validator("versions", mode="before")
    @classmethod
    def _split_versions(cls, value: object) -> object:
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value

    audit_sample_rate: float = Field(
        0.0, ge=0, le=1, description="Fraction of inference requests whose request and response are logged."
    )
    audit_max_bytes: int = Field(4096, ge=0, description="Cap on each logged request or response body.")
    tracing_endpoint: str | None = Field(
        None,
        pattern=r"^https?://",
        description="OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces): export OpenTelemetry "
        "spans of inference requests there (needs the `tracing` extra). Unset: no tracing, nothing imported.",
    )
    tracing_sample_rate: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Fraction of new traces recorded; a request with a `traceparent` follows its sampled flag.",
    )
    payload_log_url: str | None = Field(
        None,
        description="An HTTP(S) sink that sampled inference requests and responses are POSTed to, as batched "
        "CloudEvents (application/cloudevents-batch+json); unset: no payload logging.",
    )
    payload_log_sample_rate: float = Field(
        1.0, ge=0, le=1, description="Fraction of successful inference requests sent to payload_log_url."
    )
    payload_log_redact: Annotated[list[str], NoDecode] = Field(
        [],
        description="Comma-separated input/output names and JSON keys whose values are replaced by "
        '"[REDACTED]" before an event leaves the server.',
    )
    payload_log_batch_size: int = Field(100, ge=1, description="Most events per POST to the sink.")
    payload_log_queue_size: int = Field(
        10000,
        ge=1,
        description="Events waiting for the sink; when full, new ones are dropped (and counted), never waited for.",
    )
    payload_log_flush_seconds: float = Field(
        1.0, gt=0, description="Longest an event waits for its batch to fill before it is sent."
    )
    payload_log_timeout_seconds: float = Field(
        5.0, gt=0, description="Timeout of each POST to the sink (3 attempts per batch, then counted failed)."
    )
    feedback_memory: int = Field(
        10000,
        ge=0,
        description="Predictions of the last N inference requests with an `id` kept for .../feedback; 0: none.",
    )
    feedback_memory_bytes: int = Field(
        32 * 1024 * 1024,
        ge=0,
        description="At most this many bytes of remembered outputs (the oldest go first): large outputs such as "
        "masks would otherwise hold feedback_memory times their size.",
    )

    @field_validator("payload_log_redact", mode="before")
    @classmethod
    def _split_redact(cls, value: object) -> object:
        return [name.strip() for name in value.split(",") if name.strip()] if isinstance(value, str) else value

    max_gzip_members: int = Field(
        64,
        ge=1,
        description="Most members a gzip request body may have (RFC 1952 allows several; clients send one); "
        "more is answered 400.",
    )
    max_bytes_elements: int = Field(
        1_000_000,
        ge=1,
        description="Most BYTES elements one inference request may carry, all inputs together, counted from "
        "the declared shapes before any string is built: more is answered 400. Each element costs a few "
        "hundred bytes of memory on its way through the server and onnxruntime.",
    )
    max_request_id_length: int = Field(
        256, ge=1, description="Longest inference request `id` (logged and echoed back); longer is answered 400."
    )
