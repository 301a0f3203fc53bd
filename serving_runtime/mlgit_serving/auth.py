"""Who may call the server: the authenticator MLGIT_SERVING_AUTH_MODE picks, checked at the ASGI edge.

Every HTTP request must carry `Authorization: Bearer <credential>` (an API key, auth_keys.py, or an OIDC
access token, auth_oidc.py) but the health probes, the API's documentation (/docs, its assets and
/openapi.json: the same for every deployment, no model data; a browser cannot send a header when it opens a
page, and Swagger UI's Authorize button then sends the credential with each call it makes) and the
try-the-model page (/ui/ and its assets, for the same reason; its /ui/api/* data endpoints are protected).
/metrics on the main port is protected too (it names callers' identities): in a pod it is served on its own
port instead (MLGIT_SERVING_METRICS_PORT), where Prometheus scrapes it.
Refusals follow RFC 6750: 401 with `WWW-Authenticate: Bearer realm="mlgit"` (plus error="invalid_token"
when a credential was sent but is not accepted), 403 error="insufficient_scope" for a valid identity that
lacks a required scope or claim. The caller's identity (a key id or a token's subject, never the secret)
goes into the request's ASGI scope, `scope["state"]["identity"]`, which handlers read as
`request.state.identity`.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.metrics import MetricWrapperBase
from starlette.types import Scope

from .auth_errors import AuthFailure, Forbidden
from .auth_keys import ApiKeyAuthenticator
from .auth_oidc import OidcAuthenticator
from .errors import NotFound
from .repository import ModelRepository
from .settings import ServerSettings

logger = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/docs", "/openapi.json", "/ui", "/ui/"})
# The try-the-model page's assets are open like Swagger UI's; its data endpoints (/ui/api/*) are not.
_OPEN_PREFIXES = ("/docs/assets/", "/ui/assets/")
MAX_IDENTITY_LABELS = 64  # OIDC subjects are unbounded; past this many, the metric says "other"
# Refusals are logged at most this many per second (the rest counted into the next line): anyone can send
# unauthenticated requests, and each must not cost a log line.
REFUSAL_LOGS_PER_SECOND = 10
_LOGGED_PATH_CHARS = 200


def protects(path: str) -> bool:
    """Whether a request for `path` (without the root path) must carry a credential."""
    return path not in OPEN_PATHS and not path.startswith(_OPEN_PREFIXES)


class Authenticator(Protocol):
    async def authenticate(self, credential: bytes) -> str:
        """The identity behind a bearer credential; raises AuthFailure, Forbidden or Unavailable."""
        ...


def _bearer_credential(scope: Scope) -> bytes:
    values = [value for name, value in scope["headers"] if name == b"authorization"]
    if len(values) > 1:
        # A proxy that reads the last one and this server the first would disagree about who called.
        raise AuthFailure("send one Authorization header, not several", "malformed")
    if values:
        scheme, _, credential = values[0].strip().partition(b" ")
        credential = credential.strip()
        if scheme.lower() != b"bearer" or not credential:
            raise AuthFailure("the Authorization header must be `Bearer <credential>`", "malformed")
        return credential
    raise AuthFailure(
        "authentication required: send `Authorization: Bearer <credential>`", "missing", credential_given=False
    )


class AuthMetrics:
    """Refusals by reason, and inference requests by model and caller (bounded label sets)."""

    def __init__(self, registry: CollectorRegistry, repository: ModelRepository) -> None:
        self._repository = repository
        self._failures = Counter(
            "mlgit_auth_failures",
            "Requests refused by authentication (401/403), by reason.",
            ("reason",),
            registry=registry,
        )
        self._by_identity = Counter(
            "mlgit_inference_requests_by_identity",
            f"Inference requests by model and caller identity (key id or token subject; past "
            f"{MAX_IDENTITY_LABELS} identities, 'other').",
            ("model", "identity"),
            registry=registry,
        )
        self._failure_children: dict[str, MetricWrapperBase] = {}
        # By (model, label): at most models x (MAX_IDENTITY_LABELS + 1) entries, however many subjects call.
        self._identity_children: dict[tuple[str, str], MetricWrapperBase] = {}
        self._identities: set[str] = set()

    def refused(self, reason: str) -> None:
        child = self._failure_children.get(reason)
        if child is None:
            child = self._failure_children[reason] = self._failures.labels(reason)
        child.inc()

    def inference(self, model: str, identity: str) -> None:
        if identity not in self._identities and len(self._identities) < MAX_IDENTITY_LABELS:
            self._identities.add(identity)
        label = identity if identity in self._identities else "other"
        child = self._identity_children.get((model, label))
        if child is None:
            try:
                self._repository.versions(model)  # an unknown model (a 404) must not become a label
            except NotFound:
                return
            child = self._identity_children[(model, label)] = self._by_identity.labels(model, label)
        child.inc()


class AuthGuard:
    """What the ASGI edge asks before dispatching a request."""

    def __init__(self, authenticator: Authenticator, metrics: AuthMetrics) -> None:
        self._authenticator = authenticator
        self.metrics = metrics
        self._log_second = 0
        self._logged = 0  # refusal lines in the current second
        self._suppressed = 0  # refusals not logged since the last line

    @staticmethod
    def applies(scope: Scope) -> bool:
        if scope["type"] != "http":
            return False  # lifespan; no websocket route exists
        path = scope["path"]
        root = scope.get("root_path")
        if root and path.startswith(root):
            path = path[len(root) :]
        return protects(path)

    async def admit(self, scope: Scope) -> str:
        """The caller's identity, also stored in the scope; raises a ServingError to send instead."""
        try:
            identity = await self._authenticator.authenticate(_bearer_credential(scope))
        except (AuthFailure, Forbidden) as exc:
            self.metrics.refused(exc.reason)
            self._log_refusal(scope, exc)
            raise
        scope.setdefault("state", {})["identity"] = identity
        return identity

    def _log_refusal(self, scope: Scope, exc: AuthFailure | Forbidden) -> None:
        second = int(time.monotonic())
        if second != self._log_second:
            self._log_second, self._logged = second, 0
        if self._logged >= REFUSAL_LOGS_PER_SECOND:
            self._suppressed += 1
            return
        self._logged += 1
        client = scope.get("client")
        logger.warning(
            "request refused",
            extra={
                "status": exc.status_code,
                "reason": exc.reason,
                "error": exc.message,
                "path": scope["path"][:_LOGGED_PATH_CHARS],
                "client": client[0] if client else None,
                "suppressed_before": self._suppressed,  # refusals not logged since the previous line
            },
        )
        self._suppressed = 0


def create_guard(
    settings: ServerSettings, registry: CollectorRegistry, repository: ModelRepository
) -> AuthGuard | None:
    """The guard for settings.auth_mode (None for mode none); raises ConfigurationError when that mode
    cannot work as configured (api-key without a key, oidc without issuer or audience)."""
    if settings.auth_mode == "none":
        return None
    authenticator: Authenticator
    if settings.auth_mode == "api-key":
        inline = settings.api_keys.get_secret_value() if settings.api_keys is not None else ""
        authenticator = ApiKeyAuthenticator.from_settings(inline, settings.api_keys_dir)
    else:
        authenticator = OidcAuthenticator.from_settings(settings)
    return AuthGuard(authenticator, AuthMetrics(registry, repository))
