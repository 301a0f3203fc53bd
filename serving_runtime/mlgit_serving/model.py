"""One ONNX model version: async load / predict / unload around an onnxruntime session."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from . import providers
from .errors import BadRequest, ModelLoadError, ServingError
from .model_settings import ModelSettings
from .signature import Signature, signature_of

logger = logging.getLogger(__name__)

# Errors onnxruntime raises for bad argument values (e.g. an index out of range in the data): the
# client's fault, so a 400. Anything else it raises is the server's problem.
_CLIENT_FAULTS = (
    ort.capi.onnxruntime_pybind11_state.InvalidArgument,
    ort.capi.onnxruntime_pybind11_state.Fail,
)


class OnnxModel:
    """Runs inference off the event loop on its own threads."""

    def __init__(self, name: str, version: str, path: Path, settings: ModelSettings) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.settings = settings
        self.active_providers: list[str] = []
        self._session: Any = None
        self._signature: Signature | None = None
        # One worker when batching (the batcher serialises runs anyway); otherwise one per usable core,
        # since onnxruntime's run() releases the GIL and small models gain more from parallel runs
        # than from intra-op threads.
        workers = 1 if settings.batching.enabled else len(os.sched_getaffinity(0))
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix=f"ort-{name}-{version}")

    @property
    def signature(self) -> Signature:
        if self._signature is None:
            raise ModelLoadError(f"model {self.name!r} version {self.version!r} is not loaded")
        return self._signature

    def _create_session(self) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.settings.threads.intra_op
        options.inter_op_num_threads = self.settings.threads.inter_op
        # Fatal only: onnxruntime prints plain-text lines that would break the JSON log stream, and our own
        # errors (load failures, 400s) say the same with the model and request attached.
        options.log_severity_level = 4
        try:
            session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=providers.requested(self.settings)
            )
        except Exception as exc:
            raise ModelLoadError(f"onnxruntime cannot load {self.path}: {exc}") from exc
        self.active_providers = providers.check_active(self.settings, session)
        self._signature = signature_of(session, self.settings.inputs, self.settings.outputs)
        self._session = session

    async def load(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._create_session)

    def run(self, inputs: dict[str, np.ndarray], output_names: list[str]) -> tuple[list[np.ndarray], float]:
        """Blocking inference; returns the outputs and when the computation started (perf_counter)."""
        started = time.perf_counter()
        try:
            return self._session.run(output_names, inputs), started
        except _CLIENT_FAULTS as exc:
            raise BadRequest(f"inference failed for this input: {exc}") from exc
        except Exception as exc:
            logger.exception("inference failed", extra={"model": self.name, "version": self.version})
            raise ServingError(f"inference failed: {exc}") from exc

    async def predict(self, inputs: dict[str, np.ndarray], output_names: list[str]) -> tuple[list[np.ndarray], float]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.run, inputs, output_names)

    async def unload(self) -> None:
        self._executor.shutdown(wait=True)
        self._session = None
