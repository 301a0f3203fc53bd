"""One served model version: its state (loading, ready, failed), runner and metadata."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from .batching import AdaptiveBatcher
from .drift import DriftMonitor
from .errors import ModelLoadError, ServingError, Unavailable
from .metrics import VersionMetrics
from .model import OnnxModel
from .model_settings import ModelSettings
from .runner import DirectRunner
from .signature import Signature
from .validation import decode_request

logger = logging.getLogger(__name__)


def _synthetic_inputs(signature: Signature) -> dict[str, np.ndarray]:
    """Warm-up inputs when there is no sample.json: dynamic dimensions become 1 (every rank is known)."""
    inputs = {}
    for name, spec in signature.inputs.items():
        shape = tuple(1 if d == -1 else d for d in spec.shape or ())
        inputs[name] = np.full(shape, "", dtype=object) if spec.datatype == "BYTES" else np.zeros(shape, spec.dtype)
    return inputs


class ModelVersion:
    def __init__(self, name: str, version: str, path: Path, metrics: VersionMetrics) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.metrics = metrics
        self.state = "loading"
        self.reason = ""
        self.settings: ModelSettings | None = None
        self.model: OnnxModel | None = None
        self.runner: DirectRunner | AdaptiveBatcher | None = None
        # Hot-path caches, set once the version is ready.
        self.signature: Signature | None = None
        self.max_request_bytes = 0
        self.drift: DriftMonitor | None = None  # fed each served request's inputs when settings have a profile

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def describe_state(self) -> str:
        text = f"model {self.name!r} version {self.version!r} is {self.state}"
        return f"{text}: {self.reason}" if self.reason else text

    def require_ready(self) -> None:
        if self.state != "ready":
            raise Unavailable(self.describe_state(), retry_after_seconds=5)

    def fail(self, reason: str) -> None:
        self.state, self.reason = "failed", reason
        self.metrics.ready.set(0)
        logger.error(
            "model version failed to load", extra={"model": self.name, "version": self.version, "reason": reason}
        )

    async def load(self, settings: ModelSettings, sample: dict[str, Any] | None) -> None:
        self.settings = settings
        model = self.model = OnnxModel(self.name, self.version, self.path, settings)
        try:
            await model.load()
            signature = model.signature
            if settings.warmup:
                await self._warm_up(model, signature, sample)
        except Exception as exc:
            if not isinstance(exc, ModelLoadError):
                logger.exception("unexpected error while loading", extra={"model": self.name, "version": self.version})
            await model.unload()
            self.fail(str(exc))
            return
        batching = settings.batching
        if batching.enabled and not signature.batchable:
            logger.warning(
                "batching disabled: not every input and output has a dynamic first dimension",
                extra={"model": self.name, "version": self.version},
            )
        if batching.enabled and signature.batchable:
            self.runner = AdaptiveBatcher(model, self.metrics, batching)
        else:
            self.runner = DirectRunner(model, self.metrics, batching.max_queue_size)
        self.runner.start()
        self.signature = signature
        self.max_request_bytes = settings.max_request_bytes
        if settings.drift is not None:
            self.drift = DriftMonitor(settings.drift, self.name, self.version)
            self.metrics.watch_drift(self.drift)
        self.metrics.set_providers(model.active_providers)
        self.metrics.ready.set(1)
        self.state = "ready"
        logger.info(
            "model version ready",
            extra={"model": self.name, "version": self.version, "providers": model.active_providers},
        )

    async def _warm_up(self, model: OnnxModel, signature: Signature, sample: dict[str, Any] | None) -> None:
        if sample is None and any(spec.shape is None for spec in signature.inputs.values()):
            # No request can be made up for an input of unknown rank; the model serves, only colder.
            logger.warning(
                "warm-up skipped: an input has no known rank and there is no sample.json",
                extra={"model": self.name, "version": self.version},
            )
            return
        try:
            if sample is None:
                inputs = _synthetic_inputs(signature)
            else:
                inputs = decode_request(sample, memoryview(b""), signature).inputs
            await model.predict(inputs, list(signature.outputs))
        except ServingError as exc:
            source = "sample.json" if sample is not None else "a synthetic request"
            raise ModelLoadError(f"warm-up with {source} failed: {exc.message}") from exc

    async def unload(self) -> None:
        if self.runner is not None:
            await self.runner.stop()
        if self.model is not None and self.state == "ready":
            await self.model.unload()
        self.state = "unloaded"
        self.metrics.ready.set(0)
        self.metrics.watch_drift(None)

    def metadata(self, all_versions: list[str]) -> dict[str, Any]:
        settings = self.settings
        if self.signature is not None:
            inputs = [t.metadata() for t in self.signature.inputs.values()]
            outputs = [t.metadata() for t in self.signature.outputs.values()]
        else:
            inputs = [s.model_dump() for s in (settings.inputs or [])] if settings else []
            outputs = [s.model_dump() for s in (settings.outputs or [])] if settings else []
        parameters: dict[str, Any] = {"version": self.version, "state": self.state}
        if self.reason:
            parameters["reason"] = self.reason
        if settings is not None:
            parameters["device"] = settings.device
            parameters["requested_providers"] = [p.name for p in settings.providers]
            parameters["batching"] = settings.batching.model_dump()
        if self.model is not None and self.model.active_providers:
            parameters["execution_providers"] = self.model.active_providers
        return {
            "name": self.name,
            "versions": all_versions,
            "platform": "onnxruntime_onnx",
            "inputs": inputs,
            "outputs": outputs,
            "parameters": parameters,
        }
