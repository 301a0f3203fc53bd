"""`mlgit serve`: run the serving runtime on a model repository in this process, without Docker."""

from __future__ import annotations

import json
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlgit.config.load import Project
from mlgit.config.onnx_model import external_data_copies
from mlgit.console import print_warning
from mlgit.errors import MlgitError
from mlgit.runtime_settings import RUNTIME_SETTINGS, runtime_settings_dict, settings_json


def settings_drift(on_disk: object, wanted: object, prefix: str = "") -> list[str]:
    """`field: X in the file, Y from mlgit.yaml` for each leaf where two model-settings documents differ."""
    if isinstance(on_disk, dict) and isinstance(wanted, dict):
        return [
            problem
            for key in dict.fromkeys([*wanted, *on_disk])
            for problem in settings_drift(on_disk.get(key), wanted.get(key), f"{prefix}{key}.")
        ]
    if on_disk != wanted:
        return [f"{prefix.rstrip('.')}: {json.dumps(on_disk)} in the file, {json.dumps(wanted)} from mlgit.yaml"]
    return []


def _warn_if_stale(settings: Path, wanted: dict[str, object]) -> None:
    """Serving follows mlgit.yaml; say so when the committed file (what the image bakes in) lags behind."""
    try:
        on_disk = json.loads(settings.read_text(encoding="utf-8"))
    except FileNotFoundError:
        print_warning(f"{settings} is missing; serving what mlgit.yaml says (run `mlgit render` before you build)")
        return
    except (OSError, ValueError):
        on_disk = None
    drift = settings_drift(on_disk, wanted)
    if drift:
        print_warning(
            f"{settings} is out of date with mlgit.yaml; serving what mlgit.yaml says "
            f"(run `mlgit render` before you build): {'; '.join(drift)}"
        )


@contextmanager
def runtime_repository(project: Project) -> Iterator[Path]:
    """The runtime's model-repository layout (docs/contracts.md): settings rendered from mlgit.yaml now,
    the model and sample as symlinks into the model repo."""
    wanted = runtime_settings_dict(project)
    _warn_if_stale(project.root / RUNTIME_SETTINGS, wanted)
    cfg = project.config
    with tempfile.TemporaryDirectory(prefix="mlgit-serve-") as tmp:
        model_dir = Path(tmp) / cfg.name
        (model_dir / cfg.model.version).mkdir(parents=True)
        (model_dir / RUNTIME_SETTINGS).write_text(settings_json(wanted), encoding="utf-8")
        (model_dir / "sample.json").symlink_to(project.root / cfg.model.sample.path)
        (model_dir / cfg.model.version / "model.onnx").symlink_to(project.root / cfg.model.path)
        for source, location in external_data_copies(cfg.model.path, project.model):
            link = model_dir / cfg.model.version / location
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(project.root / source)
        yield Path(tmp)


RUNTIME_INSTALL_HINT = (
    "install it next to mlgit: `pip install mlgit-serving` (from a checkout: `pip install ./serving_runtime`)"
)
_SETTINGS_HINT = "the runtime's MLGIT_SERVING_* variables are described in serving_runtime/README.md"
_START_HINT = "free the port named, or pick another; with many --workers, fewer (or raise `ulimit -n`)"


def serve_locally(
    project: Project, host: str, port: int, *, grpc_port: int | None = None, workers: int | str | None = None
) -> None:
    """Serve `project` until Ctrl-C or SIGTERM (the runtime drains in-flight requests first). `grpc_port` (0: no
    gRPC) and `workers` (a count, or "auto") override MLGIT_SERVING_GRPC_PORT and MLGIT_SERVING_WORKERS; None
    leaves them to those variables and the runtime's defaults."""
    try:
        from pydantic import ValidationError
        from pydantic_settings import SettingsError

        from mlgit_serving.errors import ConfigurationError
        from mlgit_serving.server import serve
        from mlgit_serving.supervisor import WorkersFailed
    except ImportError:
        raise MlgitError("the serving runtime is not installed", RUNTIME_INSTALL_HINT) from None
    _check_port_free(host, port, "--port")
    if grpc_port:
        _check_port_free(host, grpc_port, "--grpc-port")
    overrides = {k: v for k, v in {"grpc_port": grpc_port, "workers": workers}.items() if v is not None}
    with runtime_repository(project) as repository:
        try:
            serve(repository, host=host, port=port, **overrides)
        except WorkersFailed as exc:  # it had started: "could not start" would mislead
            raise MlgitError(f"the server stopped: {exc.reason}", "see the workers' log above") from None
        except SystemExit as exc:  # uvicorn exits (code 3) when it cannot start; 3 means a policy failure here
            if exc.code not in (0, None):
                raise MlgitError(f"the server could not start on {host}:{port} (see its log above)") from None
        except ConfigurationError as exc:
            raise MlgitError(str(exc), _SETTINGS_HINT) from None
        except OSError as exc:  # a port taken meanwhile (metrics_port too), or out of file descriptors
            raise MlgitError(f"the server could not start: {exc}", _START_HINT) from None
        except ValidationError as exc:
            problems = [
                f"MLGIT_SERVING_{'_'.join(map(str, e['loc'])).upper()}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            ]
            raise MlgitError("the MLGIT_SERVING_* settings are not valid", _SETTINGS_HINT, problems=problems) from None
        except SettingsError as exc:  # a value that should be JSON (e.g. MLGIT_SERVING_OIDC_REQUIRED_CLAIMS) is not
            raise MlgitError(f"the MLGIT_SERVING_* settings are not valid: {exc}", _SETTINGS_HINT) from None


def _check_port_free(host: str, port: int, flag: str) -> None:
    """Say plainly that the port is taken, before the server's own start-up log does it less clearly."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise MlgitError(
            f"cannot listen on {host}:{port}: {exc.strerror}", f"pick another port with {flag}, or stop what uses it"
        ) from None
