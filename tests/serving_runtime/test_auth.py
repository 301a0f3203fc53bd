"""API-key authentication in the serving runtime: real servers, httpx and tritonclient with the header."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from mlgit_serving.app import create_app
from mlgit_serving.auth import MAX_IDENTITY_LABELS, REFUSAL_LOGS_PER_SECOND
from mlgit_serving.errors import ConfigurationError
from mlgit_serving.logs import JsonFormatter
from mlgit_serving.settings import ServerSettings

from .conftest import IRIS_SAMPLE, RunningServer, classifier, start_server, stop_server, write_model

KEY_1 = "alpha-0123456789abcdef"
KEY_2 = "bravo-fedcba9876543210"
DIR_KEY = "charlie-from-the-secret"
ROTATED_KEY = "delta-after-rotation"
SECRETS = (KEY_1, KEY_2, DIR_KEY, ROTATED_KEY)
PROTECTED = [
    ("GET", "/v2"),
    ("GET", "/v2/models/iris"),
    ("GET", "/v2/models/iris/versions/1/ready"),
    ("POST", "/v2/models/iris/infer"),  # the fast path (fast_path.py)
    ("POST", "/v2/models/iris/versions/1/infer"),
    ("GET", "/no/such/route"),
]
# The API's description, the same for every deployment: a browser opens /docs without a header, and Swagger
# UI's Authorize button then sends the credential with the calls it makes.
DOCUMENTATION = ["/docs", "/docs/assets/swagger-ui.css", "/openapi.json"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class SecretVolume:
    """A directory laid out as the kubelet mounts a Secret: each key a symlink through `..data` into a
    timestamped folder, which an update replaces atomically by swapping `..data`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._generation = 0

    def publish(self, files: dict[str, str]) -> None:
        self._generation += 1
        folder = self.root / f"..2030_01_01_00_00_{self._generation:02d}"
        folder.mkdir()
        for name, content in files.items():
            (folder / name).write_text(content)
        link = self.root / "..data_tmp"
        link.symlink_to(folder.name)
        os.replace(link, self.root / "..data")
        for entry in self.root.iterdir():
            if not entry.name.startswith(".") and entry.name not in files:
                entry.unlink()
        for name in files:
            if not (self.root / name).is_symlink():
                (self.root / name).symlink_to(f"..data/{name}")


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    write_model(
        root,
        "iris",
        {"1": classifier(0.0)},
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]},
        IRIS_SAMPLE,
    )
    return root


@pytest.fixture(scope="module")
def keyed(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    volume = SecretVolume(tmp_path_factory.mktemp("api-keys"))
    volume.publish({"from-secret": DIR_KEY + "\n", "empty": "  \n"})
    running = start_server(
        repository, auth_mode="api-key", api_keys=f"{KEY_1}, {KEY_2}", api_keys_dir=volume.root, access_log=True
    )
    running.wait_loaded()
    yield running
    stop_server(running)


@pytest.fixture
def http(keyed: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=keyed.url, timeout=30) as client:
        yield client


def test_health_probes_need_no_key(http: httpx.Client) -> None:
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/health/ready").status_code == 200


def test_metrics_on_the_main_port_need_a_key(http: httpx.Client) -> None:
    """They name the callers; a pod serves them on their own port instead, where Prometheus scrapes."""
    assert http.get("/metrics").status_code == 401
    assert http.get("/metrics", headers=bearer(KEY_1)).status_code == 200


def test_several_authorization_headers_are_refused(http: httpx.Client) -> None:
    """A proxy that reads the last one and the server the first would disagree about who called."""
    for order in ((KEY_1, "nope"), ("nope", KEY_1)):
        headers = [("Authorization", f"Bearer {key}") for key in order]
        response = http.get("/v2/models/iris", headers=headers)
        assert response.status_code == 401 and "one Authorization header" in response.json()["error"]


def test_refusals_are_logged_at_a_bounded_rate(http: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="mlgit_serving.auth"):
        for _ in range(200):
            assert http.get("/v2/models/iris").status_code == 401
    seconds = int(time.monotonic()) - int(started) + 1  # the clock seconds the requests spanned
    lines = [r for r in caplog.records if r.getMessage() == "request refused"]
    assert 1 <= len(lines) <= min(seconds * REFUSAL_LOGS_PER_SECOND, 199), (len(lines), seconds)


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_everything_else_answers_401_without_a_key(http: httpx.Client, method: str, path: str) -> None:
    response = http.request(method, path, json=IRIS_SAMPLE if method == "POST" else None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="mlgit"'
    assert "Authorization: Bearer" in response.json()["error"]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_a_wrong_key_is_an_invalid_token(http: httpx.Client, method: str, path: str) -> None:
    response = http.request(method, path, json=IRIS_SAMPLE if method == "POST" else None, headers=bearer("nope"))
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="mlgit", error="invalid_token"'), challenge
    assert response.json() == {"error": "the API key is not valid"}


@pytest.mark.parametrize("header", [f"Basic {KEY_1}", KEY_1, "Bearer", f"Bearer{KEY_1}"])
def test_only_the_bearer_scheme_is_accepted(http: httpx.Client, header: str) -> None:
    response = http.get("/v2/models/iris", headers={"Authorization": header})
    assert response.status_code == 401 and 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("key", [KEY_1, KEY_2, DIR_KEY])
def test_every_configured_key_is_valid_at_once(http: httpx.Client, key: str) -> None:
    assert http.get("/v2/models/iris", headers=bearer(key)).status_code == 200
    response = http.post("/v2/models/iris/infer", json=IRIS_SAMPLE, headers=bearer(key))
    assert response.status_code == 200 and response.json()["outputs"][0]["data"] == [0]


@pytest.mark.parametrize("path", DOCUMENTATION)
def test_the_documentation_opens_without_a_credential(http: httpx.Client, path: str) -> None:
    assert http.get(path).status_code == 200


def test_openapi_declares_the_bearer_scheme_for_what_it_protects(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    infer = spec["paths"]["/v2/models/{model_name}/infer"]["post"]
    assert infer["security"] == [{"bearer": []}]
    assert 401 in map(int, infer["responses"])
    assert "security" not in spec["paths"]["/v2/health/ready"]["get"]  # probes stay open


def test_tritonclient_passes_the_header(keyed: RunningServer) -> None:
    client = triton.InferenceServerClient(url=keyed.address)
    try:
        assert client.is_server_ready()  # health is open
        with pytest.raises(InferenceServerException, match="authentication required"):
            client.get_model_metadata("iris")
        assert client.get_model_metadata("iris", headers=bearer(KEY_2))["name"] == "iris"
        data = np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)
        tensor = triton.InferInput("input", [1, 4], "FP32")
        tensor.set_data_from_numpy(data, binary_data=True)
        with pytest.raises(InferenceServerException, match="not valid"):
            client.infer("iris", [tensor], headers=bearer("wrong"))
        result = client.infer("iris", [tensor], headers=bearer(KEY_1))
        assert result.as_numpy("label").tolist() == [0]
    finally:
        client.close()


def _metric(text: str, name: str, labels: str) -> float:
    found = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_identity_in_access_and_failure_logs_and_metrics_never_the_key(
    http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    # Refusals are logged at most REFUSAL_LOGS_PER_SECOND per second of the monotonic clock, and earlier tests
    # spend that budget: start in a fresh second (the refusals below are two).
    time.sleep(1 - time.monotonic() % 1)
    with caplog.at_level(logging.INFO):
        assert http.post("/v2/models/iris/infer", json=IRIS_SAMPLE, headers=bearer(KEY_2)).status_code == 200
        assert http.post("/v2/models/iris/infer", json={"inputs": 1}, headers=bearer(DIR_KEY)).status_code == 400
        assert http.post("/v2/models/iris/infer", json=IRIS_SAMPLE, headers=bearer(KEY_1[:-1])).status_code == 401
        assert http.get("/v2/models/iris").status_code == 401
    served = [r for r in caplog.records if r.getMessage() == "inference request"]
    failed = [r for r in caplog.records if r.getMessage() == "inference request failed"]
    refused = [r for r in caplog.records if r.getMessage() == "request refused"]
    assert [(r.identity, r.status) for r in served] == [("key-2", 200), ("from-secret", 400)]
    assert [(r.identity, r.status) for r in failed] == [("from-secret", 400)]
    assert [(r.reason, r.status, r.path) for r in refused] == [
        ("unknown_key", 401, "/v2/models/iris/infer"),
        ("missing", 401, "/v2/models/iris"),
    ]
    lines = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    for secret in (*SECRETS, KEY_1[:-1]):
        assert secret not in lines
    metrics = http.get("/metrics", headers=bearer(KEY_1)).text
    by_identity = "mlgit_inference_requests_by_identity_total"
    assert _metric(metrics, by_identity, '{identity="key-2",model="iris"}') >= 1
    assert _metric(metrics, by_identity, '{identity="from-secret",model="iris"}') >= 1
    assert _metric(metrics, "mlgit_auth_failures_total", '{reason="unknown_key"}') >= 1
    assert _metric(metrics, "mlgit_auth_failures_total", '{reason="missing"}') >= 1
    for secret in SECRETS:
        assert secret not in metrics


def test_unknown_models_and_many_identities_keep_the_metric_bounded(keyed: RunningServer, http: httpx.Client) -> None:
    assert http.post("/v2/models/made-up/infer", json=IRIS_SAMPLE, headers=bearer(KEY_1)).status_code == 404
    metrics = keyed.app.auth_guard.metrics  # OIDC subjects are unbounded; key ids are not, so feed it directly
    for i in range(MAX_IDENTITY_LABELS + 1000):
        metrics.inference("iris", f"subject-{i}")
    assert len(metrics._identity_children) <= MAX_IDENTITY_LABELS + 3  # the memory behind the labels too
    text = http.get("/metrics", headers=bearer(KEY_1)).text
    identities = set(re.findall(r'^mlgit_inference_requests_by_identity_total\{identity="([^"]+)"', text, re.M))
    assert len(identities) == MAX_IDENTITY_LABELS + 1 and "other" in identities
    assert 'model="made-up"' not in text


def test_a_key_rotates_through_the_directory_without_restart(repository: Path, tmp_path: Path) -> None:
    volume = SecretVolume(tmp_path)
    volume.publish({"key-a": DIR_KEY})
    running = start_server(repository, auth_mode="api-key", api_keys_dir=tmp_path)
    try:
        with httpx.Client(base_url=running.url, timeout=30) as client:
            assert client.get("/v2", headers=bearer(DIR_KEY)).status_code == 200
            assert client.get("/v2", headers=bearer(ROTATED_KEY)).status_code == 401
            volume.publish({"key-a": DIR_KEY, "key-b": ROTATED_KEY})  # step 1: add the new key
            _wait_for(lambda: client.get("/v2", headers=bearer(ROTATED_KEY)).status_code == 200)
            assert client.get("/v2", headers=bearer(DIR_KEY)).status_code == 200  # both valid meanwhile
            volume.publish({"key-b": ROTATED_KEY})  # step 2: clients moved; retire the old key
            _wait_for(lambda: client.get("/v2", headers=bearer(DIR_KEY)).status_code == 401)
            assert client.get("/v2", headers=bearer(ROTATED_KEY)).status_code == 200
    finally:
        stop_server(running)


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the key directory change was not picked up"
        time.sleep(0.1)


def test_api_key_mode_without_a_key_refuses_to_start(repository: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"needs at least one API key.*MLGIT_SERVING_API_KEYS_DIR is not set"):
        create_app(ServerSettings(model_repository=repository, auth_mode="api-key"))
    (tmp_path / "empty-key").write_text("\n")
    (tmp_path / ".hidden").write_text("kubelet internals are no keys")
    with pytest.raises(ConfigurationError, match=f"MLGIT_SERVING_API_KEYS_DIR \\({tmp_path}\\) holds no usable key"):
        create_app(
            ServerSettings(model_repository=repository, auth_mode="api-key", api_keys=" , ", api_keys_dir=tmp_path)
        )


def test_keys_come_from_the_environment(repository: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLGIT_SERVING_AUTH_MODE", "api-key")
    monkeypatch.setenv("MLGIT_SERVING_API_KEYS", f"{KEY_1},{KEY_2}")
    assert KEY_1 not in repr(ServerSettings())  # a SecretStr: settings can be logged
    running = start_server(repository)
    try:
        with httpx.Client(base_url=running.url, timeout=30) as client:
            assert client.get("/v2").status_code == 401
            assert client.get("/v2", headers=bearer(KEY_2)).status_code == 200
    finally:
        stop_server(running)


def test_empty_and_unreadable_key_files_are_logged_not_fatal(
    repository: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "good").write_text(KEY_1)
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    with caplog.at_level(logging.INFO, logger="mlgit_serving"):
        create_app(ServerSettings(model_repository=repository, auth_mode="api-key", api_keys_dir=tmp_path))
    ignored = {(r.getMessage(), Path(r.file).name) for r in caplog.records if r.getMessage().startswith("API key file")}
    assert ignored == {("API key file ignored: empty", "empty"), ("API key file ignored: unreadable", "dangling")}
    assert [r.key_ids for r in caplog.records if r.getMessage() == "API keys loaded"] == [["good"]]
    assert KEY_1 not in caplog.text
