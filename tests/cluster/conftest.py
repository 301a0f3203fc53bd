"""Fixtures for the cluster tests: the API server emulator on 127.0.0.1, a kubeconfig pointing at it,
a Deployment controller stand-in, a model repository, and an in-process model for the smoke check."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kmock import Server
from typer.testing import CliRunner, Result

from mlgit.main import app
from mlgit.samples import run_onnxruntime, to_oip
from tests.cluster.controller import DeploymentController
from tests.cluster.emulator import ApiServer

DIGEST = "sha256:" + "1" * 64
IMAGE = f"registry.example.com/linear@{DIGEST}"
AGENT_CONTEXT = "group/linear:agent"  # the shape of a GitLab agent's context


class Emulated:
    """The emulator running in its own thread and event loop, so that the synchronous CLI can call it."""

    def __init__(self, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: ApiServer = self._run(self._start(options))

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    async def _start(self, options: dict[str, Any]) -> ApiServer:
        server = ApiServer(**options)
        self._http = Server(server, host="127.0.0.1")
        await server.__aenter__()
        await self._http.__aenter__()
        return server

    async def _stop(self) -> None:
        await self._http.__aexit__(None, None, None)
        await self.server.__aexit__(None, None, None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.port}"

    def close(self) -> None:
        self._run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def write_kubeconfig(path: Path, servers: dict[str, str], current: str) -> Path:
    """A kubeconfig with one context per server URL (no credentials: the emulator checks none)."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": current,
                "clusters": [{"name": f"c{i}", "cluster": {"server": url}} for i, url in enumerate(servers.values())],
                "users": [{"name": "u", "user": {"token": "test"}}],
                "contexts": [
                    {"name": name, "context": {"cluster": f"c{i}", "user": "u"}} for i, name in enumerate(servers)
                ],
            }
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiServer]:
    """The emulator with a Deployment controller stand-in; KUBECONFIG points at it (context `emulator`)."""
    # The client caches discovery per server URL in the temp dir; ports get reused between tests.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    emulated = Emulated()
    emulated.server.on_write.append(DeploymentController())
    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig", {"emulator": emulated.url, AGENT_CONTEXT: emulated.url}, "emulator"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    yield emulated.server
    emulated.close()


@pytest.fixture
def controller(emulator: ApiServer) -> DeploymentController:
    return next(c for c in emulator.on_write if isinstance(c, DeploymentController))


class InProcessModel:
    """Answers OIP v2 ready/infer from the repository's ONNX model: the smoke check's endpoint here."""

    def __init__(self, model: Path) -> None:
        self.model = model
        self.requests: list[tuple[str, str]] = []

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        self.requests.append((method, path))
        if method == "GET":
            return 200, {}
        outputs = run_onnxruntime(self.model, body["inputs"] if body else [])
        return 200, {"outputs": [to_oip(n, "FP32", a) for n, a in outputs.items()]}


@pytest.fixture
def smoke_endpoint(model_repo: Path, monkeypatch: pytest.MonkeyPatch) -> InProcessModel:
    """Replace the port-forward (the emulator has no pods) with the in-process model."""
    endpoint = InProcessModel(model_repo / "model" / "model.onnx")

    @contextlib.contextmanager
    def open_endpoint(cluster: Any, deployment: dict[str, Any]) -> Iterator[InProcessModel]:
        yield endpoint

    monkeypatch.setattr("mlgit.cluster.smoke.open_endpoint", open_endpoint)
    return endpoint


@pytest.fixture
def mlgit(model_repo: Path) -> Callable[..., Result]:
    """Run `mlgit ARGS... MODEL_REPO` in-process; stdout and stderr come back separately."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, [*args, str(model_repo)], catch_exceptions=False)

    return invoke


@pytest.fixture
def namespace(emulator: ApiServer) -> str:
    """The dev environment's namespace, existing (dev does not set create_namespace)."""
    emulator.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "linear-dev"}})
    return "linear-dev"


def flat(text: str) -> str:
    """Output with rich's line wrapping undone, for substring assertions."""
    return " ".join(text.split())
