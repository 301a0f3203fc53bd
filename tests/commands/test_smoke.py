"""`mlgit smoke`, the image-smoke job's check, against a real HTTP server standing in for the model image."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlgit.cluster.smoke import HttpEndpoint
from mlgit.config.load import load_project
from mlgit.main import app

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
    result = runner.invoke(app, ["smoke", "--url", "http://127.0.0.1:9", "--timeout", "1", str(model_repo)])
    assert result.exit_code == 1
    assert "not ready after 1s" in result.stderr


@pytest.mark.parametrize("args", [["--url", "model:8080"], ["--url", "ftp://model"], []])
def test_a_missing_or_malformed_url_is_a_usage_error(model_repo: Path, args: list[str]) -> None:
    result = runner.invoke(app, ["smoke", *args, str(model_repo)])
    assert result.exit_code == 2
    assert "--url" in result.output


def test_a_refused_connection_reads_as_not_ready_yet() -> None:
    endpoint = HttpEndpoint("http://127.0.0.1:9")
    status, detail = endpoint.request("GET", "/v2/health/ready")
    endpoint.close()
    assert status == 0 and "ConnectError" in detail
