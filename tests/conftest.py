"""Shared fixtures: tiny real ONNX models, scratch model repos, golden files, real components."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.golden import GoldenFiles
from tests.onnx_models import write_linear_model

pytest_plugins = ["tests.fixtures_integration", "tests.build.fixtures", "tests.manifests.fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.name for p in (REPO_ROOT / "examples").iterdir() if (p / "mlgit.yaml").is_file())


def free_port() -> int:
    """A loopback port nothing listens on (for a server to start on, or a connection to be refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def default_sigint() -> None:
    """`preexec_fn` for a child that a test stops with Ctrl-C (SIGINT). A suite started from a background
    job (`pytest ... &`, nohup, CI runners) ignores SIGINT and children inherit that, so their Ctrl-C
    would do nothing; in the child, SIGINT gets back the default a terminal's child has."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="Rewrite tests/golden/ from the current renderers.")


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> GoldenFiles:
    """Compare produced files with tests/golden/<case>/ byte for byte (`--update-golden` rewrites them)."""
    return GoldenFiles(REPO_ROOT / "tests" / "golden", update=request.config.getoption("--update-golden"))


@pytest.fixture
def linear_onnx(tmp_path: Path) -> Path:
    """A real 4 -> 3 MatMul ONNX model with a dynamic batch dimension."""
    return write_linear_model(tmp_path / "linear.onnx")


@pytest.fixture
def model_repo(tmp_path: Path, linear_onnx: Path) -> Path:
    """A fresh model repository made by `mlgit init --model` around the linear model."""
    from mlgit.scaffold import InitOptions, init_repository

    return init_repository(InitOptions(target=tmp_path / "repo", name="linear", model=linear_onnx))


@pytest.fixture
def example_repo(tmp_path: Path) -> Callable[[str], Path]:
    """`mlgit init --example NAME` into a temporary directory."""
    from mlgit.scaffold import InitOptions, init_repository

    def make(name: str) -> Path:
        return init_repository(InitOptions(target=tmp_path / name, example=name))

    return make
