"""The wheel carries what mlgit ships, and installing the CLI pulls no serving dependency."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SHIPPED = {
    "pipelines": "pipelines/jobs/base.yml.j2",
    "manifests": "manifests/base/deployment.yaml.j2",
    "policies": "policies/image_digest.rego",
    "examples": "examples/iris-classifier/model/model.onnx",
    "scaffold": "scaffold/mlgit.yaml.j2",
    "serving_runtime": "serving_runtime/Dockerfile",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # Without build isolation (no download of build dependencies): the test extra brings setuptools>=69 and wheel.
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out)]
    result = subprocess.run([*command, str(REPO_ROOT)], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"pip wheel failed (is the test extra installed?):\n{result.stderr}"
    (path,) = out.glob("mlgit-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_ships_templates_policies_examples_and_runtime(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for kind, sample in SHIPPED.items():
        assert f"mlgit/_templates/{sample}" in names, f"{kind} missing from the wheel"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_carries_the_settings_contract_itself(wheel: zipfile.ZipFile) -> None:
    """cli/mlgit/model_settings.py is a symlink to the runtime's file (tests/test_settings_contract.py); the
    wheel must hold the file's contents, not the link."""
    contract = REPO_ROOT / "serving_runtime" / "mlgit_serving" / "model_settings.py"
    assert wheel.read("mlgit/model_settings.py") == contract.read_bytes()


def test_cli_requirements_pull_no_serving_stack(wheel: zipfile.ZipFile) -> None:
    metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    requires = [
        line.split(":", 1)[1].strip().lower()
        for line in wheel.read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert requires, "no requirements read"
    # onnxruntime (CPU) is a CLI requirement: validate, init and sample run the model as the runtime does.
    for forbidden in ("fastapi", "uvicorn", "onnxruntime-gpu", "onnxruntime_gpu"):
        assert not [r for r in requires if r.startswith(forbidden)], f"the CLI must not require {forbidden}"
    assert [r for r in requires if re.match(r"onnxruntime\b(?![-_])", r)], "the CLI runs models: it needs onnxruntime"


def test_shipped_folders_resolve_in_the_checkout() -> None:
    from mlgit.resources import shipped_dir

    for kind in SHIPPED:
        assert shipped_dir(kind).is_dir()  # type: ignore[arg-type]  # kind is a ShippedKind
    assert (Path(str(shipped_dir("policies"))) / "image_digest.rego").is_file()
