"""Domain errors. Each carries its HTTP status; one handler in app.py renders them as OIP errors."""

from __future__ import annotations

import orjson
from starlette.responses import Response


class ServingError(Exception):
    """An error the client sees as `{"error": message}` with `status_code`."""

    status_code = 500

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class BadRequest(ServingError):
    status_code = 400


class NotFound(ServingError):
    status_code = 404


class RequestTimeout(ServingError):
    status_code = 408


class ClientClosed(ServingError):
    """The client went away mid-request; nginx's 499, so that no server error is counted."""

    status_code = 499


class PayloadTooLarge(ServingError):
    status_code = 413


class UnsupportedMediaType(ServingError):
    status_code = 415


class Unavailable(ServingError):
    """Not ready or overloaded: the client should retry, possibly against another replica."""

    status_code = 503

    def __init__(self, message: str, retry_after_seconds: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_seconds)})


class ModelLoadError(Exception):
    """A model version cannot become ready; the message is the reason shown in health and metadata."""


class RepositoryError(Exception):
    """The model repository itself is unusable (missing, empty): the server cannot start."""


class ConfigurationError(Exception):
    """The process settings cannot work as given (e.g. api-key authentication without a key): no start."""


def error_response(message: str, status_code: int, headers: dict[str, str] | None = None) -> Response:
    """OIP v2 clients (tritonclient among them) read errors from {"error": ...}, not FastAPI's {"detail": ...}."""
    return Response(
        orjson.dumps({"error": message}), status_code=status_code, headers=headers, media_type="application/json"
    )
