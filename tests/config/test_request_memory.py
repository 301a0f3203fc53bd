"""serving.max_request_bytes must fit serving.resources.limits.memory once a JSON body is decoded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from mlgit.config.serving import JSON_EXPANSION, RUNTIME_BASE_BYTES, ResourcesConfig, ServingConfig
from mlgit.main import app

MiB = 2**20


def _serving(max_request_bytes: int, memory: str | None) -> ServingConfig:
    limits = {"cpu": "1"} if memory is None else {"cpu": "1", "memory": memory}
    return ServingConfig(
        max_request_bytes=max_request_bytes,
        resources=ResourcesConfig(requests={"cpu": "100m"}, limits=limits),
    )


def test_the_defaults_fit() -> None:
    ServingConfig()  # 64 MiB bodies in a 2Gi pod


def test_a_body_that_fits_exactly_is_accepted() -> None:
    _serving((512 * MiB - RUNTIME_BASE_BYTES) // JSON_EXPANSION, "512Mi")


def test_no_memory_limit_means_no_check() -> None:
    _serving(1024 * MiB, None)


def test_a_body_too_large_for_the_pod_names_both_fields_and_the_fix() -> None:
    fitting = (512 * MiB - RUNTIME_BASE_BYTES) // JSON_EXPANSION
    with pytest.raises(ValidationError) as caught:
        _serving(fitting + 1, "512Mi")
    message = str(caught.value)
    assert "max_request_bytes: " in message and "resources.limits.memory (512Mi)" in message
    assert f"about {JSON_EXPANSION} times its size" in message
    assert f"lower serving.max_request_bytes to at most {fitting}" in message
    assert "raise serving.resources.limits.memory to at least 513Mi" in message


def test_a_pod_smaller_than_the_server_only_suggests_more_memory() -> None:
    with pytest.raises(ValidationError) as caught:
        _serving(1, "64Mi")
    assert "raise serving.resources.limits.memory" in str(caught.value)
    assert "lower serving.max_request_bytes" not in str(caught.value)


def test_mlgit_validate_reports_it_at_the_field(model_repo: Path) -> None:
    config = model_repo / "mlgit.yaml"
    text = config.read_text()
    assert "  device: cpu\n" in text
    config.write_text(text.replace("  device: cpu\n", "  device: cpu\n  resources: {limits: {memory: 512Mi}}\n", 1))
    result = CliRunner().invoke(app, ["validate", str(model_repo)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert re.search(r"mlgit\.yaml:\d+:\d+: serving\.max_request_bytes: 67108864 does not fit", result.output)
