"""OIDC: bearer JWTs (access tokens) verified with PyJWT against the issuer's published signing keys.

Checked: the signature with a key of the issuer's JWKS, an asymmetric algorithm only (never `none` or
HMAC: with a public key as the HMAC secret anybody could sign), `iss`, `aud`, `exp` (and `nbf`/`iat` when
present) with the configured leeway, a `sub`; then the required scopes and claims (403 when missing).

The JWKS (found through the issuer's /.well-known/openid-configuration unless its URL is configured) is
fetched on first use, in a worker thread so the event loop never waits on the network, kept for
JWKS_MAX_AGE_S, and fetched again when a token names a key id it does not hold (the issuer rotated its
keys), at most once per JWKS_MIN_REFETCH_S, so that tokens with made-up key ids cannot make every request
call the identity provider.

Verifying a signature costs a few hundred microseconds, more than the rest of a small model's request, and
clients send the same token until it expires. So a verified token is remembered (by its SHA-256) with its
identity until its `exp` (plus leeway), for at most VERIFIED_CACHE_SIZE tokens; fetched keys clear it, so
a key the issuer withdraws stops being trusted at the next fetch.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import urllib.request
from typing import Any

import jwt

from .auth_errors import AuthFailure, Forbidden
from .errors import ConfigurationError, Unavailable
from .settings import ServerSettings

logger = logging.getLogger(__name__)

ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
JWKS_MAX_AGE_S = 3600.0
JWKS_MIN_REFETCH_S = 5.0
VERIFIED_CACHE_SIZE = 4096
_FETCH_TIMEOUT_S = 5.0
_MAX_DOCUMENT_BYTES = 1 << 20


def _get_json(url: str) -> Any:
    if not url.startswith(("https://", "http://")):  # urllib would also open file: and ftp: URLs
        raise ValueError(f"{url!r} is not an http(s) URL")
    with urllib.request.urlopen(url, timeout=_FETCH_TIMEOUT_S) as response:
        return json.loads(response.read(_MAX_DOCUMENT_BYTES))


class JwksCache:
    """The issuer's signing keys as raw JWKs by key id; see the module docstring for when it fetches."""

    def __init__(self, issuer: str, jwks_url: str | None) -> None:
        self._issuer = issuer
        self._jwks_url = jwks_url
        self._jwks: dict[str | None, dict[str, Any]] | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self._parsed: dict[tuple[str | None, str], jwt.PyJWK] = {}
        self.generation = 0  # counts successful fetches

    def _fetch(self) -> dict[str | None, dict[str, Any]]:
        """Blocking: runs in a worker thread."""
        if self._jwks_url is None:
            discovery = _get_json(self._issuer.rstrip("/") + "/.well-known/openid-configuration")
            if discovery.get("issuer") != self._issuer:
                raise ValueError(f"the openid-configuration names issuer {discovery.get('issuer')!r}")
            jwks_url = str(discovery["jwks_uri"])
            if self._issuer.startswith("https://") and not jwks_url.startswith("https://"):
                # The signing keys decide who may call: never take them over plain HTTP from an HTTPS issuer.
                raise ValueError(f"the openid-configuration's jwks_uri {jwks_url!r} is not https")
            self._jwks_url = jwks_url
        document = _get_json(self._jwks_url)
        return {jwk.get("kid"): jwk for jwk in document["keys"] if jwk.get("use", "sig") == "sig"}

    async def _refetch(self, reason: str) -> None:
        async with self._lock:  # concurrent requests wait for the one fetch
            now = time.monotonic()
            if self._attempted_at is not None and now - self._attempted_at < JWKS_MIN_REFETCH_S:
                return
            self._attempted_at = now
            try:
                jwks = await asyncio.to_thread(self._fetch)
            except Exception as exc:  # network, JSON, missing fields: the old keys (if any) stay in use
                logger.error(
                    "cannot fetch the OIDC signing keys",
                    extra={"issuer": self._issuer, "jwks_url": self._jwks_url, "why": reason, "error": str(exc)},
                )
                return
            self._jwks, self._fetched_at, self._parsed = jwks, now, {}
            self.generation += 1
            logger.info("OIDC signing keys fetched", extra={"why": reason, "key_ids": [k for k in jwks if k]})

    async def key(self, kid: str | None, algorithm: str) -> jwt.PyJWK:
        if self._jwks is None or time.monotonic() - self._fetched_at > JWKS_MAX_AGE_S:
            await self._refetch("first use" if self._jwks is None else "expired")
        if self._jwks is None:
            raise Unavailable("cannot verify tokens now: the identity provider's signing keys are unavailable")
        if kid not in self._jwks and not (kid is None and len(self._jwks) == 1):
            await self._refetch("unknown key id")
            if kid not in self._jwks and not (kid is None and len(self._jwks) == 1):
                raise AuthFailure("the token is signed with a key the issuer does not publish", "unknown_kid")
        raw = self._jwks[kid] if kid in self._jwks else next(iter(self._jwks.values()))
        parsed = self._parsed.get((kid, algorithm))
        if parsed is None:
            try:
                # A JWK without "alg" takes the token's (already limited to ALGORITHMS); one with "alg" keeps
                # it, and PyJWT refuses a token whose algorithm differs.
                parsed = jwt.PyJWK(raw, raw.get("alg") or algorithm)
            except jwt.PyJWTError:
                raise AuthFailure(f"the issuer's key cannot verify {algorithm}", "invalid_token") from None
            self._parsed[(kid, algorithm)] = parsed
        return parsed


def _scopes(claims: dict[str, Any]) -> set[str]:
    granted: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            granted.update(value.split())
        elif isinstance(value, list):
            granted.update(str(item) for item in value)
    return granted


class OidcAuthenticator:
    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_url: str | None,
        required_scopes: list[str],
        required_claims: dict[str, Any],
        leeway_seconds: float,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._required_scopes = required_scopes
        self._required_claims = required_claims
        self._leeway = leeway_seconds
        self.jwks = JwksCache(issuer, jwks_url)
        self._verified: dict[bytes, tuple[str, float]] = {}  # SHA-256 of a token -> (identity, valid until)
        self._verified_generation = 0

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> OidcAuthenticator:
        missing = [
            f"MLGIT_SERVING_{name.upper()}" for name in ("oidc_issuer", "oidc_audience") if not getattr(settings, name)
        ]
        if missing:
            raise ConfigurationError(f"MLGIT_SERVING_AUTH_MODE=oidc needs {' and '.join(missing)}")
        assert settings.oidc_issuer is not None and settings.oidc_audience is not None
        return cls(
            settings.oidc_issuer,
            settings.oidc_audience,
            settings.oidc_jwks_url,
            settings.oidc_required_scopes,
            settings.oidc_required_claims,
            settings.oidc_leeway_seconds,
        )

    async def authenticate(self, credential: bytes) -> str:
        if self._verified_generation != self.jwks.generation:
            self._verified.clear()
            self._verified_generation = self.jwks.generation
        digest = hashlib.sha256(credential).digest()  # not the token itself: a lookup's timing tells nothing
        known = self._verified.get(digest)
        if known is not None and time.time() < known[1]:
            return known[0]
        identity, valid_until = await self._verify(credential)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[digest] = (identity, valid_until)
        return identity

    async def _verify(self, credential: bytes) -> tuple[str, float]:
        try:
            header = jwt.get_unverified_header(credential)
        except jwt.PyJWTError:
            raise AuthFailure("the bearer token is not a JWT", "invalid_token") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise AuthFailure(f"token algorithm {str(algorithm)[:16]!r} is not accepted", "forbidden_algorithm")
        kid = header.get("kid")
        key = await self.jwks.key(kid if isinstance(kid, str) else None, algorithm)
        try:
            claims = jwt.decode(
                credential,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthFailure("the token has expired", "expired") from None
        except jwt.InvalidAudienceError:
            raise AuthFailure(f"the token is not for audience {self._audience}", "wrong_audience") from None
        except jwt.InvalidIssuerError:
            raise AuthFailure(f"the token is not from issuer {self._issuer}", "wrong_issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthFailure(f"the token has no {exc.claim!r} claim", "invalid_token") from None
        except jwt.PyJWTError:
            raise AuthFailure("the token's signature or claims are not valid", "invalid_token") from None
        self._authorize(claims)
        return str(claims["sub"]), float(claims["exp"]) + self._leeway

    def _authorize(self, claims: dict[str, Any]) -> None:
        missing = [scope for scope in self._required_scopes if scope not in _scopes(claims)]
        if missing:
            raise Forbidden(f"the token lacks scope {' '.join(missing)}", "insufficient_scope", self._required_scopes)
        for name, wanted in self._required_claims.items():
            value = claims.get(name)
            if value != wanted and not (isinstance(value, list) and wanted in value):
                raise Forbidden(f"the token's {name!r} claim does not grant access", "missing_claim", [])
