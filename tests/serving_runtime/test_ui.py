"""/ui/: the try-the-model page (shipped files only, a Content-Security-Policy), its data endpoints (the
models, one model's sample and adapter), open page and protected data under auth, MLGIT_SERVING_UI."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path

import httpx
import pytest

from mlgit_serving.ui_routes import CONTENT_SECURITY_POLICY, UI_DIR
from tests.ui.examples import add_example

from .conftest import IRIS_SAMPLE, RunningServer, classifier, start_server, stop_server, write_model

KEY = "ui-test-key-0123456789"
SEGMENTATION = "image-segmentation"
# A scheme-relative or absolute URL naming a host: the page must load nothing from anywhere else.
OTHER_HOST = re.compile(r"(?i)(https?:)?//[a-z0-9-]+(\.[a-z0-9-]+)+")


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    write_model(
        root, "iris", {"1": classifier(0.0)}, {"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]}
    )
    (root / "iris" / "sample.json").write_text(json.dumps(IRIS_SAMPLE))
    add_example(root, SEGMENTATION)
    return root


def _serve(repository: Path, **settings: object) -> Iterator[httpx.Client]:
    running: RunningServer = start_server(repository, **settings)
    try:
        running.wait_loaded()
        with httpx.Client(base_url=running.url, timeout=30) as client:
            yield client
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def http(repository: Path) -> Iterator[httpx.Client]:
    yield from _serve(repository)


@pytest.fixture(scope="module")
def keyed(repository: Path) -> Iterator[httpx.Client]:
    yield from _serve(repository, auth_mode="api-key", api_keys=KEY)


def _assets(page: str, client: httpx.Client) -> dict[str, str]:
    """Every file the page loads: its links and scripts, then each module's imports, transitively."""
    pending = [re.sub(r"^assets/", "/ui/assets/", p) for p in re.findall(r'(?:src|href)="(assets/[^"]+)"', page)]
    seen: dict[str, str] = {}
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        response = client.get(path)
        assert response.status_code == 200, path
        seen[path] = response.text
        if path.endswith(".js"):
            pending += [f"/ui/assets/{name}" for name in re.findall(r'from "\./([^"]+)"', response.text)]
    return seen


def test_page_and_assets_come_from_the_server_itself(http: httpx.Client) -> None:
    page = http.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY and "img-src 'self' data: blob:" in CONTENT_SECURITY_POLICY
    assets = _assets(page.text, http)
    assert {"/ui/assets/app.js", "/ui/assets/style.css", "/ui/assets/image.js"} <= set(assets)
    shipped = {f"/ui/assets/{p.name}" for p in (UI_DIR / "assets").iterdir()}
    assert set(assets) == shipped, "every shipped asset is used, and only shipped ones"
    for path, text in {"/ui/": page.text, **assets}.items():
        assert not OTHER_HOST.search(text), f"{path} names another host: {OTHER_HOST.search(text)}"
    # A credential the page asks for stays in the tab: sessionStorage, never localStorage or a cookie.
    scripts = "\n".join(text for path, text in assets.items() if path.endswith(".js"))
    assert "sessionStorage.setItem" in scripts
    assert not re.search(r"localStorage\s*\.|document\.cookie", scripts)


def test_ui_without_the_slash_redirects_to_the_page(http: httpx.Client) -> None:
    response = http.get("/ui")
    assert response.status_code == 308 and response.headers["location"] == "/ui/"


def test_models_are_listed_with_their_versions(http: httpx.Client) -> None:
    models = http.get("/ui/api/models").json()["models"]
    assert models == [
        {"name": SEGMENTATION, "version": "1", "versions": ["1"], "state": "ready"},
        {"name": "iris", "version": "1", "versions": ["1"], "state": "ready"},
    ]


def test_a_model_comes_with_its_sample_request_and_adapter(http: httpx.Client, repository: Path) -> None:
    body = http.get(f"/ui/api/model/{SEGMENTATION}").json()
    settings = json.loads((repository / SEGMENTATION / "model-settings.json").read_text())
    sample = json.loads((repository / SEGMENTATION / "sample.json").read_text())
    assert body["adapter"] == settings["adapter"] and body["adapter"]["output"]["name"] == "mask"
    assert body["sample"] == {"inputs": sample["inputs"]}  # the request only: no expected outputs
    iris = http.get("/ui/api/model/iris").json()
    assert iris == {"name": "iris", "version": "1", "sample": {"inputs": IRIS_SAMPLE["inputs"]}, "adapter": None}


def test_an_unknown_model_is_a_404_naming_the_models(http: httpx.Client) -> None:
    response = http.get("/ui/api/model/nope")
    assert response.status_code == 404
    assert response.json() == {"error": f"unknown model 'nope'; this server has ['{SEGMENTATION}', 'iris']"}


def test_under_auth_the_page_is_open_and_its_data_protected(keyed: httpx.Client) -> None:
    for path in ("/ui/", "/ui", "/ui/assets/app.js", "/ui/assets/style.css"):
        assert keyed.get(path).status_code in (200, 308), path
    for path in ("/ui/api/models", "/ui/api/model/iris", "/ui/api/model/nope"):
        response = keyed.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == 'Bearer realm="mlgit"'
    authorized = keyed.get("/ui/api/model/iris", headers={"Authorization": f"Bearer {KEY}"})
    assert authorized.status_code == 200 and authorized.json()["sample"] is not None
    # The open asset prefix does not reach the data through dot segments (httpx would remove them; send raw).
    connection = HTTPConnection(keyed.base_url.host, keyed.base_url.port, timeout=30)
    connection.request("GET", "/ui/assets/../api/models")
    response = connection.getresponse()
    assert response.status == 404 and b"models" not in response.read()
    connection.close()


def test_the_ui_can_be_turned_off(repository: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLGIT_SERVING_UI", "false")
    for client in _serve(repository):
        for path in ("/ui/", "/ui", "/ui/assets/app.js", "/ui/api/models", "/ui/api/model/iris"):
            assert client.get(path).status_code == 404, path
        assert client.get("/v2").status_code == 200
