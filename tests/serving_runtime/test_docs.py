"""/docs: Swagger UI from assets the runtime ships (no other host), and MLGIT_SERVING_DOCS to turn it off."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from .conftest import start_server, stop_server


def test_docs_page_loads_everything_from_the_server_itself(http: httpx.Client) -> None:
    page = http.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page.text), "the page names another host"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(assets)
    for asset in assets:
        response = http.get(asset)
        assert response.status_code == 200 and len(response.content) > 100, asset
    assert "url: '/openapi.json'" in page.text
    assert http.get("/openapi.json").json()["info"]["title"] == "mlgit serving runtime"


def test_swagger_ui_licence_ships_with_it(http: httpx.Client) -> None:
    assert "Apache License" in http.get("/docs/assets/LICENSE").text


def test_docs_can_be_turned_off(model_repository: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLGIT_SERVING_DOCS", "false")
    running = start_server(model_repository)
    try:
        with httpx.Client(base_url=running.url, timeout=30) as client:
            for path in ("/docs", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"):
                assert client.get(path).status_code == 404, path
            assert client.get("/v2").status_code == 200
    finally:
        stop_server(running)
