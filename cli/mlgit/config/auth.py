"""mlgit.yaml `serving.auth` (and `environments.<env>.auth`, `review.auth`): who may call the model's endpoint.

The serving runtime enforces it (MLGIT_SERVING_AUTH_MODE and friends, docs/contracts.md); the manifests
renderer turns the resolved section of each environment into those variables and the api-key Secret's mount.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from mlgit.config.types import DnsName, HttpsUrl, OneLine, Strict

AuthMode = Literal["none", "api-key", "oidc"]
# Where the api-key Secret is mounted: the runtime reads one key per file (MLGIT_SERVING_API_KEYS_DIR).
API_KEYS_DIR = "/var/run/secrets/mlgit/api-keys"

# RFC 6749 scope tokens, minus the comma: the runtime takes the list comma-separated.
_SCOPE_RE = re.compile(r"^[\x21\x23-\x2b\x2d-\x5b\x5d-\x7e]+$")


def _scope(value: str) -> str:
    if not _SCOPE_RE.match(value):
        raise ValueError(f"{value!r} is not a scope (printable, no spaces, commas, quotes or backslashes)")
    return value


Scope = Annotated[str, AfterValidator(_scope)]


class ApiKeyAuth(Strict):
    secret: DnsName | None = Field(
        None,
        description="The Kubernetes Secret holding the keys, one data key per key id (key-1, key-2, ...), in the "
        "environment's namespace (default <name>-api-keys). mlgit never writes it; the .gitlab-ci.yml header says "
        "how to create and rotate it, and `mlgit deploy` refuses to deploy until it exists.",
    )


class OidcAuth(Strict):
    issuer: HttpsUrl = Field(description="The identity provider's issuer URL: tokens' `iss` must equal it.")
    audience: OneLine = Field(min_length=1, description="Tokens' `aud` must contain it (this API's client id).")
    jwks_url: HttpsUrl | None = Field(
        None, description="Where the signing keys are; default: jwks_uri of the issuer's openid-configuration."
    )
    required_scopes: list[Scope] = Field(
        default_factory=list, description="Scopes every token must carry (`scope` or `scp` claim); else 403."
    )
    required_claims: dict[OneLine, str | int | bool] = Field(
        default_factory=dict, description="Claims every token must carry with exactly these values; else 403."
    )


class AuthConfig(Strict):
    mode: AuthMode = Field(
        "none",
        description="none: anyone may call; api-key: `Authorization: Bearer <key>` with a key of the Secret; oidc: a "
        "JWT from the issuer. Health endpoints stay open. Not written: api-key in the production tier, else none.",
    )
    api_key: ApiKeyAuth = Field(default_factory=ApiKeyAuth, description="Mode api-key: where the keys are.")
    oidc: OidcAuth | None = Field(None, description="Mode oidc: the issuer and what a token must carry.")

    @model_validator(mode="after")
    def _consistent(self) -> AuthConfig:
        if self.mode == "oidc" and self.oidc is None:
            raise ValueError("oidc: mode oidc needs `oidc: {issuer: https://..., audience: ...}`")
        # A section the mode ignores is most likely a mistyped or forgotten mode: say so rather than serve
        # with another kind of authentication (or none) than the file seems to ask for.
        if self.oidc is not None and self.mode != "oidc":
            raise ValueError(f"oidc: given, but mode is {self.mode}; set mode: oidc, or remove the oidc section")
        if "api_key" in self.model_fields_set and self.mode != "api-key":
            raise ValueError(
                f"api_key: given, but mode is {self.mode}; set mode: api-key, or remove the api_key section"
            )
        return self


def default_auth(production: bool) -> AuthConfig:
    """What an environment gets when mlgit.yaml says nothing: production needs a key, the rest is open."""
    return AuthConfig(mode="api-key" if production else "none")
