"""Execution providers: what to ask onnxruntime for, and whether what it actually gave is acceptable."""

from __future__ import annotations

from typing import Any

import onnxruntime as ort

from .errors import ModelLoadError
from .model_settings import GPU_PROVIDERS, ModelSettings


def requested(settings: ModelSettings) -> list[tuple[str, dict[str, str]]]:
    """The ordered provider list in onnxruntime's (name, options) form; option values must be strings."""
    return [(p.name, {k: str(v) for k, v in p.options.items()}) for p in settings.providers]


def check_active(settings: ModelSettings, session: Any) -> list[str]:
    """Return the providers the session really runs on; refuse a GPU model that landed on the CPU.

    onnxruntime-gpu without a usable GPU (no driver, wrong CUDA or cuDNN) logs an error and silently runs
    on the CPU; only `session.get_providers()` tells the truth.
    """
    active = list(session.get_providers())
    on_gpu = any(p in GPU_PROVIDERS for p in active)
    if settings.device == "gpu" and not on_gpu and not settings.allow_cpu_fallback:
        raise ModelLoadError(
            f"device is gpu and {[p.name for p in settings.providers]} were requested, but the session "
            f"runs on {active} (onnxruntime {ort.__version__}, available: {ort.get_available_providers()}, "
            f"device: {ort.get_device()}); check the GPU, driver, CUDA and cuDNN, or set "
            "allow_cpu_fallback to serve on the CPU anyway"
        )
    return active
