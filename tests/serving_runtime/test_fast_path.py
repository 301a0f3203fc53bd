"""The lean inference dispatch (fast_path.py) and the memory tuning applied at server start."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from mlgit_serving.errors import NotFound
from mlgit_serving.fast_path import match_infer, serve_infer
from mlgit_serving.memory import freeze_startup_objects, keep_large_blocks


def _scope(method: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": [], "query_string": b"", **extra}


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v2/models/iris/infer", ("iris", None)),
        ("POST", "/v2/models/iris/versions/2/infer", ("iris", "2")),
        ("GET", "/v2/models/iris/infer", None),  # FastAPI answers 405
        ("POST", "/v2/models/iris/infer/", None),
        ("POST", "/v2/models//infer", None),
        ("POST", "/v2/models/a/b/infer", None),
        ("POST", "/v2/models/iris", None),
    ],
)
def test_match_infer(method: str, path: str, expected: tuple[str, str | None] | None) -> None:
    assert match_infer(_scope(method, path)) == expected


def test_match_infer_leaves_other_scopes_to_fastapi() -> None:
    assert match_infer({"type": "lifespan"}) is None
    assert match_infer(_scope("POST", "/v2/models/iris/infer", root_path="/prefix")) is None


def _call(endpoint: Any) -> tuple[int, dict[str, str], Any]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(serve_infer(endpoint, ("iris", None), _scope("POST", "/v2/models/iris/infer"), receive, send))
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], headers, json.loads(sent[1]["body"])


def test_serving_errors_become_oip_errors() -> None:
    async def endpoint(request: Request, model: str, version: str | None) -> Response:
        raise NotFound(f"unknown model {model!r}")

    status, headers, body = _call(endpoint)
    assert status == 404 and body == {"error": "unknown model 'iris'"}
    assert headers["content-type"] == "application/json"


def test_unexpected_errors_are_500_without_details(caplog: pytest.LogCaptureFixture) -> None:
    async def endpoint(request: Request, model: str, version: str | None) -> Response:
        raise RuntimeError("secret internals")

    status, _, body = _call(endpoint)
    assert status == 500 and body == {"error": "internal server error"}
    assert "unhandled error" in caplog.text


def test_fast_path_serves_versions_and_errors(http: httpx.Client) -> None:
    body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}
    response = http.post("/v2/models/iris/versions/1/infer", json=body)
    assert response.status_code == 200 and response.json()["model_version"] == "1"
    response = http.post("/v2/models/nosuch/infer", json=body)
    assert response.status_code == 404 and "error" in response.json()
    response = http.post("/v2/models/iris/infer", content=b"{", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]


def test_memory_tuning() -> None:
    assert keep_large_blocks()  # the test machines run glibc
    freeze_startup_objects()
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
