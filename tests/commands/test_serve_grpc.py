"""`mlgit serve --grpc-port/--workers` (and serving.grpc_port/workers of mlgit.yaml): a real server answering
tritonclient.grpc, the precedence of flag over mlgit.yaml, and the values refused."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from mlgit.build.run import Published, container_settings, published_ports
from mlgit.config.load import load_project
from mlgit.main import app
from tests.conftest import free_port

runner = CliRunner()


def _serving(repo: Path, lines: str) -> None:
    """Add `lines` (YAML, two-space indented) under `serving:` in mlgit.yaml."""
    config = repo / "mlgit.yaml"
    text = config.read_text(encoding="utf-8")
    assert "  device: cpu\n" in text
    config.write_text(text.replace("  device: cpu\n", f"  device: cpu\n{lines}", 1), encoding="utf-8")


def test_serve_answers_tritonclient_grpc_on_the_grpc_port(model_repo: Path) -> None:
    grpcclient = pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is a test dependency")
    port, grpc_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlgit", "serve", str(model_repo), "--port", str(port), "--grpc-port", str(grpc_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if client.is_server_ready():
                    break
            except grpcclient.InferenceServerException:
                pass  # not listening yet
            if time.monotonic() > deadline:
                pytest.fail("mlgit serve --grpc-port did not become ready over gRPC in 60 s")
            time.sleep(0.1)
        assert client.is_server_live()
        assert client.is_model_ready("linear")
        sample = json.loads((model_repo / "model" / "sample.json").read_text())
        (tensor,) = sample["inputs"]
        infer_input = grpcclient.InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
        infer_input.set_data_from_numpy(np.array(tensor["data"], dtype=np.float32).reshape(tensor["shape"]))
        result = client.infer("linear", [infer_input])
        expected = sample["expected_outputs"][0]
        assert result.as_numpy(expected["name"]).ravel().tolist() == pytest.approx(expected["data"], rel=1e-5)
    finally:
        client.close()
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert f"gRPC (inference.GRPCInferenceService) on 127.0.0.1:{grpc_port}" in output


def _serve_recording(
    repo: Path, monkeypatch: pytest.MonkeyPatch, *flags: str
) -> tuple[Result, list[dict[str, object]]]:
    """`mlgit serve` with the runtime's serve() replaced by one that records what it was asked to override."""
    server = pytest.importorskip("mlgit_serving.server", reason="the serving runtime is needed")
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(server, "serve", lambda repository, host, port, **overrides: calls.append(overrides))
    return runner.invoke(app, ["serve", str(repo), "--port", str(free_port()), *flags]), calls


def test_flags_win_over_mlgit_yaml(model_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Three workers' request memory (serving.max_request_bytes, once per worker) fits the default 2Gi.
    _serving(model_repo, "  grpc_port: 9000\n  workers: 3\n  max_request_bytes: 16777216\n")
    port = free_port()
    result, calls = _serve_recording(model_repo, monkeypatch)
    assert result.exit_code == 0, result.output
    assert calls == [{"grpc_port": 9000, "workers": 3}]
    result, calls = _serve_recording(model_repo, monkeypatch, "--grpc-port", str(port), "--workers", "auto")
    assert result.exit_code == 0, result.output
    assert calls == [{"grpc_port": port, "workers": "auto"}]
    result, calls = _serve_recording(model_repo, monkeypatch, "--grpc-port", "0")  # 0 turns gRPC off
    assert result.exit_code == 0, result.output
    assert calls == [{"grpc_port": 0, "workers": 3}]


def test_without_settings_the_runtime_decides(model_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing in mlgit.yaml and no flag: no override, so MLGIT_SERVING_GRPC_PORT/WORKERS and defaults apply."""
    result, calls = _serve_recording(model_repo, monkeypatch)
    assert result.exit_code == 0, result.output
    assert calls == [{}]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--grpc-port", "70000"], "--grpc-port"),
        (["--grpc-port", "nine"], "--grpc-port"),
        (["--workers", "0"], "'0' is not a number of processes"),
        (["--workers", "lots"], "'lots' is not a number of processes"),
        (["--port", "9100", "--grpc-port", "9100"], "the gRPC port 9100 is also the HTTP port"),
        (["--docker", "--grpc-port", "9000"], "--grpc-port and --workers apply to the in-process server only"),
    ],
    ids=["grpc-port-out-of-range", "grpc-port-not-a-number", "workers-zero", "workers-word", "same-port", "docker"],
)
def test_bad_values_are_usage_errors(model_repo: Path, flags: list[str], message: str) -> None:
    result = runner.invoke(app, ["serve", str(model_repo), *flags])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert message in result.output


def test_a_taken_grpc_port_is_a_clear_user_error(model_repo: Path) -> None:
    pytest.importorskip("mlgit_serving", reason="the serving runtime (pip install ./serving_runtime) is needed")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", str(model_repo), "--port", str(free_port()), "--grpc-port", str(busy)])
    assert result.exit_code == 1, result.output
    assert f"cannot listen on 127.0.0.1:{busy}" in result.output and "--grpc-port" in result.output


def test_docker_runs_the_container_as_mlgit_yaml_says(model_repo: Path) -> None:
    _serving(model_repo, "  grpc_port: 9000\n  workers: auto\n  max_request_bytes: 16777216\n")
    config = load_project(model_repo).config
    environment, _ = container_settings(config, {"MLGIT_SERVING_GRPC_PORT": "1", "MLGIT_SERVING_WORKERS": "7"})
    assert environment["MLGIT_SERVING_GRPC_PORT"] == "9000"
    assert environment["MLGIT_SERVING_WORKERS"] == "auto"
    assert published_ports(config, Published("127.0.0.1", 18080)) == {
        "8080/tcp": ("127.0.0.1", 18080),
        "9000/tcp": ("127.0.0.1", 9000),
    }
