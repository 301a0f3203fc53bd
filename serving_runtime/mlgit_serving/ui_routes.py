"""/ui/: a page to try the served models, shipped in ui/ (no asset from another host), and the two data
endpoints it reads besides the inference API: the models, and one model's sample request and input adapter.

The page and its assets are open like /docs (a browser cannot send a header when it opens a page; the page
then sends the credential it asks for with every call); /ui/api/* carries model data and is protected
(auth.py OPEN_PATHS and protects())."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from .errors import ModelLoadError, ServingError
from .http_meta import json_response
from .repository import read_sample, read_settings
from .state import ServingState

UI_DIR = Path(__file__).parent / "ui"
UI_PATH = "/ui"
ASSETS_PATH = "/ui/assets"
# The page runs only its own scripts and styles; images may also be data: and blob: URLs (the upload's
# preview and the mask canvas). No framing, no plugins, no <base> rewriting.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def add_ui_routes(app: FastAPI, state: ServingState) -> None:
    """Register /ui/, its assets and /ui/api/*."""
    repository = state.repository
    page = (UI_DIR / "index.html").read_bytes()

    async def index(request: Request) -> Response:
        # Referrer-Policy: the page's URL never travels on to another site (there is none to go to, but a
        # pasted link in an output could).
        headers = {
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        }
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    async def to_index(request: Request) -> Response:
        # The page addresses everything relative to /ui/, so it must be opened with the trailing slash.
        root = request.scope.get("root_path", "").rstrip("/")
        return RedirectResponse(f"{root}{UI_PATH}/", status_code=308)

    async def models() -> Response:
        names = dict.fromkeys(mv.name for mv in repository.all())
        listed = []
        for name in names:
            latest = repository.get(name)
            versions = [mv.version for mv in repository.versions(name)]
            listed.append({"name": name, "version": latest.version, "versions": versions, "state": latest.state})
        return json_response({"models": listed})

    async def model(model_name: str) -> Response:
        latest = repository.get(model_name)  # 404 naming the models this server has
        directory = repository.root / model_name
        try:
            settings = latest.settings or read_settings(directory)
            sample = read_sample(directory)
        except ModelLoadError as exc:  # the model itself fails to load for the same reason
            raise ServingError(str(exc)) from None
        adapter = settings.adapter.model_dump(mode="json") if settings.adapter is not None else None
        return json_response({"name": model_name, "version": latest.version, "sample": sample, "adapter": adapter})

    app.add_route(UI_PATH, to_index, methods=["GET"], include_in_schema=False)
    app.add_route(f"{UI_PATH}/", index, methods=["GET"], include_in_schema=False)
    app.add_api_route(f"{UI_PATH}/api/models", models, methods=["GET"], include_in_schema=False)
    app.add_api_route(f"{UI_PATH}/api/model/{{model_name}}", model, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS_PATH, StaticFiles(directory=UI_DIR / "assets"), name="ui-assets")
