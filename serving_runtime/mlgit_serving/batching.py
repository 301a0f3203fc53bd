"""Adaptive batching: a wrapper that stacks compatible requests along the first dimension.

A batch runs as soon as the model is free and no admitted request is still on its way to the queue
(requests are admitted once their body is read and decoded), or when it is full, or when its oldest
request has waited max_delay. So a lone request never waits, and under load batches grow to what
arrives while the previous one runs.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import ServingError, Unavailable
from .metrics import VersionMetrics
from .model import OnnxModel
from .model_settings import BatchingSettings
from .runner import Admission, rows_of

if TYPE_CHECKING:
    from .tracing import RequestTrace


@dataclass(slots=True)
class _Item:
    inputs: dict[str, np.ndarray]
    rows: int
    key: tuple[tuple[int, ...], ...] | None  # None: never batched with another request
    future: asyncio.Future[dict[str, np.ndarray]]
    enqueued: float
    trace: RequestTrace | None


class AdaptiveBatcher:
    def __init__(self, model: OnnxModel, metrics: VersionMetrics, settings: BatchingSettings) -> None:
        self._model = model
        self._metrics = metrics
        self._max_rows = settings.max_batch_size
        self._max_delay = settings.max_delay_ms / 1000
        self._inputs = list(model.signature.inputs)
        self._outputs = list(model.signature.outputs)
        self._queue: deque[_Item] = deque()
        self._wakeup = asyncio.Event()
        self._held = 0  # requests inside infer(): queued, running, or answered but not yet resumed
        self.admission = Admission(settings.max_queue_size, metrics.pending, self._wakeup.set)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._worker(), name=f"batcher-{self._model.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(Unavailable("the server is shutting down"))

    async def infer(
        self, inputs: dict[str, np.ndarray], output_names: list[str], trace: RequestTrace | None = None
    ) -> dict[str, np.ndarray]:
        # Inputs that disagree on their batch size cannot be stacked with anyone's: slicing the outputs
        # back by row counts would hand one client another client's rows. Such a request runs alone.
        batch_sizes = {inputs[name].shape[0] if inputs[name].ndim else None for name in self._inputs}
        key = tuple(inputs[name].shape[1:] for name in self._inputs) if len(batch_sizes) == 1 else None
        future: asyncio.Future[dict[str, np.ndarray]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(inputs, rows_of(inputs), key, future, time.perf_counter(), trace))
        self._held += 1
        self._wakeup.set()
        try:
            outputs = await future
        finally:
            self._held -= 1
        return {name: outputs[name] for name in output_names}

    def _fill(self, batch: list[_Item], rows: int) -> int:
        """Move queued requests with the batch's shapes into it, oldest first, up to max_batch_size rows."""
        key, kept = batch[0].key, deque()
        while self._queue:
            item = self._queue.popleft()
            if key is not None and item.key == key and rows + item.rows <= self._max_rows:
                batch.append(item)
                rows += item.rows
            else:
                kept.append(item)
        self._queue = kept
        return rows

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            first = self._queue.popleft()
            batch, rows = [first], first.rows
            rows = self._fill(batch, rows) if rows < self._max_rows else rows
            # Requests admitted but not yet queued are about to be: worth waiting for.
            while rows < self._max_rows and self.admission.outstanding > self._held:
                remaining = first.enqueued + self._max_delay - time.perf_counter()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                timer = loop.call_later(remaining, self._wakeup.set)
                await self._wakeup.wait()
                timer.cancel()
                rows = self._fill(batch, rows)
            await self._execute(batch, rows)

    async def _execute(self, batch: list[_Item], rows: int) -> None:
        names = self._outputs
        try:
            if len(batch) == 1:
                outputs, started = await self._model.predict(batch[0].inputs, names)
            else:
                merged = {n: np.concatenate([item.inputs[n] for item in batch]) for n in self._inputs}
                outputs, started = await self._model.predict(merged, names)
                if any(out.ndim == 0 or out.shape[0] != rows for out in outputs):
                    raise ServingError("the model's outputs are not batch-major")
        except Exception as exc:
            await self._isolate(batch, exc)
            return
        finished = time.perf_counter()
        self._metrics.compute_duration.observe(finished - started)
        self._metrics.batch_size.observe(rows)
        offset = 0
        for item in batch:
            self._metrics.queue_duration.observe(started - item.enqueued)
            if len(batch) == 1:
                result = dict(zip(names, outputs, strict=True))
            else:
                end = offset + item.rows
                result = {n: out[offset:end] for n, out in zip(names, outputs, strict=True)}
                offset = end
            if item.trace is not None:  # every request of the batch links to the others (tracing.py)
                item.trace.ran(item.enqueued, started, finished, rows, [i.trace for i in batch if i.trace])
            if not item.future.done():
                item.future.set_result(result)

    async def _isolate(self, batch: list[_Item], exc: Exception) -> None:
        """A batch failed: rerun its requests one by one so that only the faulty ones fail."""
        if len(batch) == 1:
            if not batch[0].future.done():
                batch[0].future.set_exception(exc)
            return
        for item in batch:
            await self._execute([item], item.rows)
