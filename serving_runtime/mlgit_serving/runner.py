"""Admission control and the unbatched runner: every request is one onnxruntime execution."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import Unavailable
from .metrics import VersionMetrics
from .model import OnnxModel

if TYPE_CHECKING:
    from .tracing import RequestTrace


class Admission:
    """Bounds the requests a model version holds at once (queued, running or being read); past the bound
    the server answers 503 rather than letting latency grow without limit. Use as `with admission:`."""

    def __init__(self, limit: int, pending: Any, on_release: Callable[[], None] | None = None) -> None:
        self.limit = limit
        self.outstanding = 0
        self._pending = pending
        self._on_release = on_release

    def __enter__(self) -> None:
        if self.outstanding >= self.limit:
            raise Unavailable(f"overloaded: {self.outstanding} requests already queued (max_queue_size)")
        self.outstanding += 1
        self._pending.inc()

    def __exit__(self, *exc_info: object) -> None:
        self.outstanding -= 1
        self._pending.dec()
        if self._on_release is not None:
            self._on_release()


def rows_of(inputs: dict[str, np.ndarray]) -> int:
    first = next(iter(inputs.values()))
    return first.shape[0] if first.ndim else 1


class DirectRunner:
    def __init__(self, model: OnnxModel, metrics: VersionMetrics, max_queue_size: int) -> None:
        self._model = model
        self._metrics = metrics
        self.admission = Admission(max_queue_size, metrics.pending)

    async def infer(
        self, inputs: dict[str, np.ndarray], output_names: list[str], trace: RequestTrace | None = None
    ) -> dict[str, np.ndarray]:
        submitted = time.perf_counter()
        outputs, started = await self._model.predict(inputs, output_names)
        finished = time.perf_counter()
        metrics = self._metrics
        metrics.queue_duration.observe(started - submitted)
        metrics.compute_duration.observe(finished - started)
        metrics.batch_size.observe(rows_of(inputs))
        if trace is not None:
            trace.ran(submitted, started, finished, rows_of(inputs), [trace])
        return dict(zip(output_names, outputs, strict=True))

    def start(self) -> None:
        """Nothing runs in the background without batching."""

    async def stop(self) -> None:
        """Requests run inside their own handlers, which the server drains before stopping us."""
