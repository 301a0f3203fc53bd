"""The refusals of authentication, as RFC 6750 describes them: each carries its WWW-Authenticate challenge
and a short `reason` that labels the mlgit_auth_failures metric (a fixed set of words)."""

from __future__ import annotations

import re

from .errors import ServingError

_REALM = 'Bearer realm="mlgit"'
_NOT_QUOTABLE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")  # what an RFC 6750 quoted value may hold


def _quoted(text: str) -> str:
    return '"' + _NOT_QUOTABLE.sub("?", text) + '"'


class AuthFailure(ServingError):
    """401: no credential (only the realm is announced), or one that is not accepted (error="invalid_token")."""

    status_code = 401

    def __init__(self, message: str, reason: str, *, credential_given: bool = True) -> None:
        challenge = _REALM
        if credential_given:
            challenge += f', error="invalid_token", error_description={_quoted(message)}'
        super().__init__(message, {"WWW-Authenticate": challenge})
        self.reason = reason


class Forbidden(ServingError):
    """403: the identity is valid but lacks a required scope or claim."""

    status_code = 403

    def __init__(self, message: str, reason: str, scopes: list[str]) -> None:
        challenge = f'{_REALM}, error="insufficient_scope", error_description={_quoted(message)}'
        if scopes:
            challenge += f", scope={_quoted(' '.join(scopes))}"
        super().__init__(message, {"WWW-Authenticate": challenge})
        self.reason = reason
