"""`mlgit smoke`, the image-smoke job's check, against a real HTTP server standing in for the model image."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from mlgit.config.load import load_project
from mlgit.errors import MlgitError
from mlgit.main import app
from mlgit.smoke import HttpEndpoint, smoke_check
from tests.conftest import free_port

runner = CliRunner()


def _server(answer: dict[str, Any], model: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            ready = self.path == f"/v2/models/{model}/ready"
            self._send(200 if ready else 404, {"ready": ready} if ready else {"error": "not found"})

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.path == f"/v2/models/{model}/infer" and "expected_outputs" not in request
            self._send(200, {"model_name": model, "outputs": answer["outputs"]})

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def serve(model_repo: Path) -> Iterator[Any]:
    servers = []

    def start(outputs: list[dict[str, Any]]) -> str:
        server = _server({"outputs": outputs}, load_project(model_repo).config.name)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections (the kernel completes them into the backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def test_a_server_answering_the_sample_passes(model_repo: Path, serve: Any) -> None:
    expected = load_project(model_repo).sample["expected_outputs"]
    result = runner.invoke(app, ["smoke", "--url", serve(expected), str(model_repo)])
    assert result.exit_code == 0, result.output
    assert "model linear is ready and answered the sample as expected" in result.stdout


def test_a_wrong_answer_exits_1(model_repo: Path, serve: Any) -> None:
    wrong = [dict(t, data=[v + 1 for v in t["data"]]) for t in load_project(model_repo).sample["expected_outputs"]]
    result = runner.invoke(app, ["smoke", "--url", serve(wrong), str(model_repo)])
    assert result.exit_code == 1
    assert "answered the sample differently" in result.stderr and "Traceback" not in result.output


def test_no_server_exits_1_after_the_timeout(model_repo: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["smoke", "--url", url, "--timeout", "1", str(model_repo)])
    assert result.exit_code == 1
    assert "not ready after 1s" in result.stderr and "ConnectError" in result.stderr


def test_a_server_that_never_answers_is_given_up_at_the_timeout(model_repo: Path, silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    started = time.monotonic()
    result = runner.invoke(app, ["smoke", "--url", url, "--timeout", "2", str(model_repo)])
    elapsed = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert "not ready after 2s" in result.stderr and "ReadTimeout" in result.stderr
    # Each request waits only for the time left (a request used to wait 60 s whatever --timeout said).
    assert elapsed < 30, f"--timeout 2 took {elapsed:.0f} s"


def test_the_port_forward_request_is_bounded_by_the_time_left(model_repo: Path, silent_port: int) -> None:
    from mlgit.cluster.smoke import PortForwardEndpoint

    endpoint = PortForwardEndpoint(None, "linear-dev", "linear-0", 8080)  # type: ignore[arg-type]
    endpoint._socket = lambda: socket.create_connection(("127.0.0.1", silent_port))  # type: ignore[method-assign]
    started = time.monotonic()
    with pytest.raises(MlgitError, match="no answer from pod linear-0 through the port-forward"):
        smoke_check(endpoint, load_project(model_repo), timeout=2)
    elapsed = time.monotonic() - started
    assert elapsed < 30, f"a 2 s smoke check took {elapsed:.0f} s"


def test_mlgit_smoke_does_not_import_the_kubernetes_client(model_repo: Path, serve: Any) -> None:
    """`mlgit smoke` needs no cluster: the kubernetes client costs half a second of start-up."""
    url = serve(load_project(model_repo).sample["expected_outputs"])
    code = (
        "import sys\nfrom mlgit.main import app\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "print('imported kubernetes:', 'kubernetes' in sys.modules)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, "smoke", "--url", url, str(model_repo)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "answered the sample as expected" in run.stdout
    assert run.stdout.splitlines()[-1] == "imported kubernetes: False"


def test_the_smoke_check_lives_outside_the_cluster_package() -> None:
    from tests.test_architecture import import_graph

    graph = import_graph()
    for module in ("mlgit.smoke", "mlgit.commands.smoke"):
        assert not [m for m in graph[module] if m.startswith("mlgit.cluster")], module
    assert "mlgit.smoke" in graph["mlgit.cluster.smoke"] and "mlgit.smoke" in graph["mlgit.cluster.deploy"]


def test_the_help_says_which_urls_it_takes_and_how_https_is_verified() -> None:
    from mlgit import smoke as check
    from mlgit.commands import smoke as command

    smoke = typer.main.get_command(app).commands["smoke"]  # type: ignore[attr-defined]
    url = next(p for p in smoke.params if p.name == "url")
    texts = [smoke.help or "", url.help or "", command.__doc__ or "", check.__doc__ or ""]
    assert not [t for t in texts if "plain HTTP" in t]
    assert "https://" in url.help and "CA" in url.help


@pytest.mark.parametrize("args", [["--url", "model:8080"], ["--url", "ftp://model"], []])
def test_a_missing_or_malformed_url_is_a_usage_error(model_repo: Path, args: list[str]) -> None:
    result = runner.invoke(app, ["smoke", *args, str(model_repo)])
    assert result.exit_code == 2
    assert "--url" in result.output


def test_a_refused_connection_reads_as_not_ready_yet() -> None:
    endpoint = HttpEndpoint(f"http://127.0.0.1:{free_port()}")
    status, detail = endpoint.request("GET", "/v2/health/ready", timeout=5)
    endpoint.close()
    assert status == 0 and "ConnectError" in detail
