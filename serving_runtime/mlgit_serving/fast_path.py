"""Lean ASGI dispatch for POST .../infer, ahead of FastAPI's middleware stack and router.

FastAPI wraps every request in several middlewares (error, telemetry, body limit, exception, exit stack)
and a linear route scan: about 60 us per request on one core, a quarter of a small model's request
time. The inference endpoint needs none of them: it reads its own body with its own limits and renders
its own errors, so matching requests go straight to it. The FastAPI route stays registered, for
OpenAPI and for every request this matcher declines.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .errors import ServingError, error_response

logger = logging.getLogger(__name__)

InferEndpoint = Callable[..., Awaitable[Response]]
_INFER_PATH = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")


def match_infer(scope: Scope) -> tuple[str, str | None] | None:
    """(model, version or None) when the request is a POST to an inference URL, else None."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    found = _INFER_PATH.fullmatch(scope["path"])
    return None if found is None else (found[1], found[2])


async def serve_infer(
    endpoint: InferEndpoint, target: tuple[str, str | None], scope: Scope, receive: Receive, send: Send
) -> None:
    request = Request(scope, receive)
    try:
        response = await endpoint(request, target[0], target[1])
    except ServingError as exc:
        response = error_response(exc.message, exc.status_code, exc.headers)
    except Exception as exc:
        logger.error("unhandled error", exc_info=exc, extra={"path": scope["path"]})
        response = error_response("internal server error", 500)
    await response(scope, receive, send)
