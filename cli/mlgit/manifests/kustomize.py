"""Running kustomize: the one built into kubectl, found on PATH or through MLGIT_KUBECTL."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mlgit.errors import MlgitError

KUBECTL_ENV = "MLGIT_KUBECTL"
_INSTALL_HINT = (
    "install kubectl 1.27 or newer (it has kustomize built in): https://kubernetes.io/docs/tasks/tools/ "
    f"- or set {KUBECTL_ENV} to the path of a kubectl binary"
)


@dataclass(frozen=True)
class KustomizeOutput:
    yaml: str
    warnings: str
    """What kustomize printed on stderr while succeeding (deprecations and the like)."""


def kubectl_path() -> str:
    """The kubectl to run: $MLGIT_KUBECTL, else the one on PATH; MlgitError saying how to get one."""
    configured = os.environ.get(KUBECTL_ENV)
    if configured:
        if not (Path(configured).is_file() and os.access(configured, os.X_OK)):
            raise MlgitError(f"{KUBECTL_ENV}={configured} is not an executable file", _INSTALL_HINT)
        return configured
    found = shutil.which("kubectl")
    if not found:
        raise MlgitError("kubectl not found: mlgit builds manifests with `kubectl kustomize`", _INSTALL_HINT)
    return found


def kustomize(directory: Path) -> KustomizeOutput:
    """`kubectl kustomize DIRECTORY`; a kustomize error becomes an MlgitError showing its message."""
    result = subprocess.run(
        [kubectl_path(), "kustomize", str(directory)], capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise MlgitError(
            f"kustomize could not build {directory}",
            "run `mlgit render` if deploy/ is out of date with mlgit.yaml, then try again",
            problems=result.stderr.strip().splitlines(),
        )
    return KustomizeOutput(yaml=result.stdout, warnings=result.stderr)
