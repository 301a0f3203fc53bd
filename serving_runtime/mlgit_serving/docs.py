"""/docs: Swagger UI over /openapi.json, its assets served from this package (swagger_ui/), so that
the page makes no request to another host (FastAPI's default page loads them from a CDN)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from .auth import protects
from .openapi import ERROR

ASSETS = Path(__file__).parent / "swagger_ui"
DOCS_PATH = "/docs"
_ASSETS_PATH = "/docs/assets"


def add_docs_routes(app: FastAPI) -> None:
    """Register /docs and its assets; the app must serve its OpenAPI document (openapi_url set)."""
    assert app.openapi_url is not None
    openapi_url = app.openapi_url

    async def swagger_ui(request: Request) -> Response:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{_ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{_ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{_ASSETS_PATH}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # Swagger's default posts the spec to its validator
        )

    app.add_route(DOCS_PATH, swagger_ui, include_in_schema=False)
    app.mount(_ASSETS_PATH, StaticFiles(directory=ASSETS), name="swagger-ui")


def declare_bearer(app: FastAPI) -> None:
    """Say in the OpenAPI document which operations need `Authorization: Bearer` (what auth.py enforces),
    so that clients generated from it send the header and Swagger UI offers its Authorize button."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        spec.setdefault("components", {})["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        refused = {"description": "Missing, invalid or insufficient credential (see WWW-Authenticate)",
                   "content": {"application/json": {"schema": ERROR}}}  # fmt: skip
        for path, operations in spec.get("paths", {}).items():
            if not protects(path):
                continue
            for operation in operations.values():
                operation["security"] = [{"bearer": []}]
                operation.setdefault("responses", {}).update({"401": refused, "403": refused})
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
