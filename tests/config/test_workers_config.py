"""serving.workers and serving.grpc_port in mlgit.yaml: worker counts the pod cannot hold are refused, wasteful
ones warned about, and a YAML boolean is not a port."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from mlgit.config.load import load_project
from mlgit.config.serving import JSON_EXPANSION, MAX_WORKERS, RUNTIME_BASE_BYTES, ResourcesConfig, ServingConfig

MiB = 2**20


def _serving(workers: int | str, cpu: str | None, memory: str = "512Mi", max_request_bytes: int = MiB) -> ServingConfig:
    limits = {"memory": memory} if cpu is None else {"cpu": cpu, "memory": memory}
    return ServingConfig(
        workers=workers,
        max_request_bytes=max_request_bytes,
        resources=ResourcesConfig(requests={"cpu": "100m", "memory": "64Mi"}, limits=limits),
    )


def test_each_worker_needs_its_own_request_memory() -> None:
    fitting = (512 * MiB // 2 - RUNTIME_BASE_BYTES) // JSON_EXPANSION
    _serving(2, "2", max_request_bytes=fitting)
    with pytest.raises(ValidationError) as caught:
        _serving(2, "2", max_request_bytes=fitting + 1)
    message = str(caught.value)
    assert "once per worker (2)" in message and f"at most {fitting}" in message
    assert "or lower serving.workers" in message


def test_auto_counts_the_cpu_limit_rounded_up() -> None:
    fitting = (512 * MiB // 2 - RUNTIME_BASE_BYTES) // JSON_EXPANSION
    _serving("auto", "1.5", max_request_bytes=fitting)  # 2 workers
    with pytest.raises(ValidationError, match=r"once per worker \(2\)"):
        _serving("auto", "1.5", max_request_bytes=fitting + 1)


def test_the_reviewers_impossible_count_is_refused() -> None:
    """9999 workers in a 1-CPU, 512Mi pod: more than the runtime starts, and far more than the memory holds."""
    with pytest.raises(
        ValidationError, match=rf"workers\n.*9999 is not a number of processes: .*at most {MAX_WORKERS}"
    ):
        _serving(9999, "1")
    with pytest.raises(ValidationError, match=r"max_request_bytes: .* once per worker \(200\)"):
        _serving(200, "1")


@pytest.mark.parametrize(
    ("serving", "warning"),
    [
        ("workers: 4\n  resources: {limits: {cpu: '2', memory: 8Gi}}", r"serving\.workers: 4 server processes share "
         r"resources\.limits\.cpu \(2\): beyond 2 they add memory, not throughput"),
        ("workers: auto\n  resources: {limits: {memory: 4Gi}}", r"serving\.workers: auto without "
         r"serving\.resources\.limits\.cpu starts one server process \(and model copy\) per CPU of the node"),
    ],
    ids=["more-than-the-cpu-limit", "auto-without-a-cpu-limit"],
)  # fmt: skip
def test_wasteful_worker_counts_are_warned_about_at_the_field(model_repo: Path, serving: str, warning: str) -> None:
    config = model_repo / "mlgit.yaml"
    text = config.read_text(encoding="utf-8")
    assert "  device: cpu\n" in text
    config.write_text(text.replace("  device: cpu\n", f"  device: cpu\n  {serving}\n", 1), encoding="utf-8")
    warnings = load_project(model_repo, warn=False).warnings
    assert [w for w in warnings if re.search(rf"mlgit\.yaml:\d+:\d+: {warning}", w)], warnings


def test_a_worker_count_within_the_cpu_limit_is_not_warned_about(model_repo: Path) -> None:
    assert not [w for w in load_project(model_repo, warn=False).warnings if "serving.workers" in w]


def test_a_yaml_boolean_is_not_a_grpc_port() -> None:
    with pytest.raises(ValidationError, match=r"grpc_port\n  Input should be a valid integer"):
        ServingConfig(grpc_port=True)
