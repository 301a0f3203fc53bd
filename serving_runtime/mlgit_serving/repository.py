"""The model repository: discovery of models and versions on disk, their loading and lookup."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import ModelLoadError, NotFound, RepositoryError
from .metrics import ServingMetrics
from .model_settings import ModelSettings
from .model_version import ModelVersion

logger = logging.getLogger(__name__)

SETTINGS_FILE = "model-settings.json"
SAMPLE_FILE = "sample.json"
MODEL_FILE = "model.onnx"


def _version_key(name: str) -> tuple[int, int, str]:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def read_settings(directory: Path) -> ModelSettings:
    """A model directory's model-settings.json as the runtime serves it (every default when there is none)."""
    path = directory / SETTINGS_FILE
    if not path.exists():
        return ModelSettings()
    try:
        return ModelSettings.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
        )
        raise ModelLoadError(f"{path}: {problems}") from None


def read_sample(directory: Path) -> dict[str, Any] | None:
    """The request of a model directory's sample.json (its inputs only), None when there is none."""
    path = directory / SAMPLE_FILE
    if not path.exists():
        return None
    try:
        sample = json.loads(path.read_bytes())
    except ValueError as exc:
        raise ModelLoadError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(sample, dict) or not isinstance(sample.get("inputs"), list):
        raise ModelLoadError(f"{path} needs an 'inputs' list")
    return {"inputs": sample["inputs"]}


def scan(root: Path) -> list[Path]:
    """The model directories under root; fails when there is nothing to serve."""
    if not root.is_dir():
        raise RepositoryError(f"model repository {root} is not a directory")
    models = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not models:
        raise RepositoryError(f"model repository {root} contains no model directories")
    return models


class ModelRepository:
    def __init__(
        self,
        root: Path,
        metrics: ServingMetrics,
        *,
        versions: list[str] | None = None,
        default_version: str | None = None,
    ) -> None:
        """`versions`: load only these (None or empty: every version on disk); `default_version`: what the
        unversioned URLs serve (None: the highest integer version)."""
        self.root = root
        self._metrics = metrics
        self._only = set(versions or [])
        self._default = default_version
        self._models: dict[str, list[ModelVersion]] = {}  # versions in order, ints then strings
        self._latest: dict[str, ModelVersion] = {}
        self.problems: list[str] = []  # reasons, besides model versions, that keep the server not ready

    def discover(self) -> None:
        for directory in scan(self.root):
            on_disk = sorted((p.name for p in directory.iterdir() if (p / MODEL_FILE).is_file()), key=_version_key)
            if not on_disk:
                self.problems.append(f"model {directory.name!r}: no <version>/{MODEL_FILE} in {directory}")
                continue
            name = directory.name
            # A version left out is not loaded at all: it costs no memory and answers 404 like an unknown one.
            names = [v for v in on_disk if not self._only or v in self._only]
            missing = sorted(self._only - set(on_disk), key=_version_key)
            if missing:
                self.problems.append(f"model {name!r} has no version {', '.join(missing)} (it has {on_disk})")
            if not names:
                continue
            versions = [
                ModelVersion(name, v, directory / v / MODEL_FILE, self._metrics.for_version(name, v)) for v in names
            ]
            self._models[name] = versions
            integers = [mv for mv in versions if mv.version.isdigit()]
            default = next((mv for mv in versions if mv.version == self._default), None)
            if self._default is not None and default is None:
                self.problems.append(f"model {name!r}: default version {self._default} is not among {names}")
            self._latest[name] = default or (integers or versions)[-1]

    def versions(self, name: str) -> list[ModelVersion]:
        versions = self._models.get(name)
        if versions is None:
            raise NotFound(f"unknown model {name!r}; this server has {sorted(self._models)}")
        return versions

    def get(self, name: str, version: str | None = None) -> ModelVersion:
        versions = self.versions(name)
        if version is None:
            return self._latest[name]
        for mv in versions:
            if mv.version == version:
                return mv
        raise NotFound(f"model {name!r} has no version {version!r}; it has {[mv.version for mv in versions]}")

    def all(self) -> list[ModelVersion]:
        return [mv for versions in self._models.values() for mv in versions]

    def not_ready(self) -> list[str]:
        return self.problems + [mv.describe_state() for mv in self.all() if not mv.ready]

    async def load_all(self) -> None:
        await asyncio.gather(*(self._load_model(name, versions) for name, versions in self._models.items()))

    async def _load_model(self, name: str, versions: list[ModelVersion]) -> None:
        directory = self.root / name
        try:
            settings = read_settings(directory)
            sample = read_sample(directory)
        except ModelLoadError as exc:
            for mv in versions:
                mv.fail(str(exc))
            return
        await asyncio.gather(*(mv.load(settings, sample) for mv in versions))

    async def unload_all(self) -> None:
        await asyncio.gather(*(mv.unload() for mv in self.all()))
