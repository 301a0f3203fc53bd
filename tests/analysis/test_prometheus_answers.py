"""What `mlgit analyze` makes of Prometheus answers a healthy Prometheus gives but the scraped runtime cannot be
made to produce here (a quantile of +Inf: every request beyond the highest histogram bucket), and of answers
that are no query result at all. A real HTTP server on a free port speaks Prometheus's /api/v1/query."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from typer.testing import CliRunner

from mlgit.main import app
from tests.analysis.conftest import CANARY_IMAGE

Answer = Callable[[str], dict]


def _vector(value: str) -> dict:
    return {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, value]}]}}


def healthy_but_infinite_p99(query: str) -> dict:
    """500 requests on each track, no 5xx, p50 10 ms, and a p99 of +Inf on both."""
    if query.startswith("histogram_quantile(0.99"):
        return _vector("+Inf")
    if query.startswith("histogram_quantile(0.5"):
        return _vector("0.01")
    return _vector("0" if "5.." in query else "500")


@pytest.fixture
def prometheus() -> Iterator[Callable[[Answer], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Answer) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query)["query"][0]
                body = json.dumps(answer(query)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def analyze(repo: Path, url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["analyze", "--env", "staging", "--prometheus", url, *args, str(repo)])
    return result.exit_code, result.stdout, result.stderr


def test_an_infinite_quantile_is_not_measured_and_written_as_null(
    canary_repo: Path, prometheus: Callable[[Answer], str], tmp_path: Path
) -> None:
    """+Inf on both tracks is no ratio: inconclusive (exit 5), not a failed canary (exit 4, an abort MR)."""
    output = tmp_path / "verdict.json"
    code, out, err = analyze(canary_repo, prometheus(healthy_but_infinite_p99), "--output", str(output))
    assert code == 5, out + err
    text = output.read_text(encoding="utf-8")
    verdict = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the verdict JSON"))
    assert verdict["verdict"] == "inconclusive"
    assert verdict["canary"]["p99_seconds"]["value"] is None
    assert verdict["canary"]["p99_seconds"]["note"] == "Prometheus answered +Inf"
    p99 = next(c for c in verdict["checks"] if c["name"] == "p99 ratio")
    assert (p99["value"], p99["passed"]) == (None, None)
    assert "Prometheus answered +Inf" in p99["note"]
    assert verdict["images"] == {"stable": None, "canary": CANARY_IMAGE}


def test_success_without_data_is_an_error_naming_the_url(
    canary_repo: Path, prometheus: Callable[[Answer], str]
) -> None:
    url = prometheus(lambda query: {"status": "success"})
    code, out, err = analyze(canary_repo, url)
    assert code == 1, out + err
    assert f"Prometheus at {url} answered the query" in " ".join(err.split())
    assert "no data.result" in err and "Traceback" not in err
