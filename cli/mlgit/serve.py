"""`mlgit serve`: run the serving runtime on a model repository in this process, without Docker."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlgit.config.load import Project
from mlgit.errors import MlgitError
from mlgit.render.repo_files import RUNTIME_SETTINGS


@contextmanager
def runtime_repository(project: Project) -> Iterator[Path]:
    """The runtime's model-repository layout (docs/contracts.md) as symlinks into the model repo."""
    settings = project.root / RUNTIME_SETTINGS
    if not settings.is_file():
        raise MlgitError(f"{settings} is missing", "run `mlgit render` first")
    cfg = project.config
    with tempfile.TemporaryDirectory(prefix="mlgit-serve-") as tmp:
        model_dir = Path(tmp) / cfg.name
        (model_dir / cfg.model.version).mkdir(parents=True)
        (model_dir / "model-settings.json").symlink_to(settings)
        (model_dir / "sample.json").symlink_to(project.root / cfg.model.sample.path)
        (model_dir / cfg.model.version / "model.onnx").symlink_to(project.root / cfg.model.path)
        yield Path(tmp)


def serve_locally(project: Project, host: str, port: int) -> None:
    """Serve `project` until Ctrl-C or SIGTERM (the runtime drains in-flight requests first)."""
    try:
        from mlgit_serving.server import serve
    except ImportError:
        raise MlgitError(
            "the serving runtime is not installed",
            "install it next to mlgit: `pip install mlgit-serving` (from a checkout: `pip install ./serving_runtime`)",
        ) from None
    _check_port_free(host, port)
    with runtime_repository(project) as repository:
        try:
            serve(repository, host=host, port=port)
        except SystemExit as exc:  # uvicorn exits (code 3) when it cannot start; 3 means a policy failure here
            if exc.code not in (0, None):
                raise MlgitError(f"the server could not start on {host}:{port} (see its log above)") from None


def _check_port_free(host: str, port: int) -> None:
    """Say plainly that the port is taken, before the server's own start-up log does it less clearly."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise MlgitError(
            f"cannot listen on {host}:{port}: {exc.strerror}", "pick another port with --port, or stop what uses it"
        ) from None
