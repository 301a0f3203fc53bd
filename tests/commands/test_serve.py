"""`mlgit serve`: the real runtime in a subprocess, answered over HTTP; and its failures."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from mlgit.main import app
from tests.conftest import free_port

runner = CliRunner()


def test_serve_answers_the_sample_and_stops_on_sigterm(model_repo: Path) -> None:
    pytest.importorskip("mlgit_serving", reason="the serving runtime (pip install ./serving_runtime) is needed")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlgit", "serve", str(model_repo), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            pytest.fail("mlgit serve did not become ready in 30 s")
        sample = json.loads((model_repo / "model" / "sample.json").read_text())
        answer = httpx.post(f"{base}/v2/models/linear/infer", json={"inputs": sample["inputs"]}, timeout=5)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["data"] == pytest.approx(sample["expected_outputs"][0]["data"], rel=1e-5)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def _serve_recording_settings(repo: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Result, list[dict[str, object]]]:
    """`mlgit serve` with the runtime's serve() replaced by one that records the settings it was given."""
    server = pytest.importorskip("mlgit_serving.server", reason="the serving runtime is needed")
    served: list[dict[str, object]] = []

    def fake_serve(repository: Path, host: str, port: int) -> None:
        served.append(json.loads((repository / "linear" / "model-settings.json").read_text()))

    monkeypatch.setattr(server, "serve", fake_serve)
    return runner.invoke(app, ["serve", str(repo), "--port", str(free_port())]), served


def test_serve_serves_what_mlgit_yaml_says_and_names_the_stale_file(
    model_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = model_repo / "mlgit.yaml"
    config.write_text(config.read_text().replace("  batching:\n", "  batching:\n    max_batch_size: 7\n", 1))
    result, served = _serve_recording_settings(model_repo, monkeypatch)
    assert result.exit_code == 0, result.output
    assert served[0]["batching"]["max_batch_size"] == 7  # type: ignore[index]
    assert "model-settings.json is out of date with mlgit.yaml; serving what mlgit.yaml says" in result.stderr
    assert "batching.max_batch_size: 32 in the file, 7 from mlgit.yaml" in result.stderr


def test_serve_without_rendered_settings_serves_and_says_so(model_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (model_repo / "model-settings.json").unlink()
    result, served = _serve_recording_settings(model_repo, monkeypatch)
    assert result.exit_code == 0, result.output
    assert served[0]["name"] == "linear"
    assert "model-settings.json is missing" in result.stderr and "mlgit render" in result.stderr


def test_serve_is_quiet_about_an_up_to_date_settings_file(model_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, served = _serve_recording_settings(model_repo, monkeypatch)
    assert result.exit_code == 0 and served, result.output
    assert "model-settings.json" not in result.stderr


def test_serve_without_the_runtime_installed_names_the_package(
    model_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlgit_serving.server", None)  # import of it now raises ImportError
    result = runner.invoke(app, ["serve", str(model_repo)])
    assert result.exit_code == 1 and "serving runtime is not installed" in result.output
    assert "pip install" in result.output


def test_serve_on_a_taken_port_is_a_clear_user_error(model_repo: Path) -> None:
    pytest.importorskip("mlgit_serving", reason="the serving runtime (pip install ./serving_runtime) is needed")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        result = runner.invoke(app, ["serve", str(model_repo), "--port", str(taken.getsockname()[1])])
    assert result.exit_code == 1 and "cannot listen on 127.0.0.1" in result.output and "--port" in result.output


def test_serve_port_out_of_range_is_a_usage_error(model_repo: Path) -> None:
    result = runner.invoke(app, ["serve", str(model_repo), "--port", "70000"])
    assert result.exit_code == 2 and "Traceback" not in result.output
