"""The image-smoke job's check against a real HTTP server standing in for the model image."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlgit.config.load import load_project
from mlgit.pipelines.smoke import HttpEndpoint, main


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
    assert main(["--url", serve(expected), str(model_repo)]) == 0


def test_a_wrong_answer_fails(model_repo: Path, serve: Any, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = [dict(t, data=[v + 1 for v in t["data"]]) for t in load_project(model_repo).sample["expected_outputs"]]
    assert main(["--url", serve(wrong), str(model_repo)]) == 1
    assert "answered the sample differently" in capsys.readouterr().err


def test_a_refused_connection_reads_as_not_ready_yet() -> None:
    endpoint = HttpEndpoint("http://127.0.0.1:9")
    status, detail = endpoint.request("GET", "/v2/health/ready")
    endpoint.close()
    assert status == 0 and "ConnectError" in detail
