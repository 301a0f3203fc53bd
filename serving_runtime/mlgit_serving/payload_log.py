"""Sampled inference payloads sent to an HTTP sink as CloudEvents (batched structured mode).

The hot path only draws a random number and, for a sampled request, puts the raw bodies on a bounded
queue without waiting (full: the event is dropped and counted). Everything costly (parsing the bodies,
redaction, JSON encoding, the POST with its retries) happens in one background task and a worker
thread, so a slow or dead sink never slows or fails inference. Binary tensor data (the binary extension)
is not sent: only the JSON part of each body, with redacted tensors' and keys' values replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter

logger = logging.getLogger("mlgit_serving.payload_log")

EVENT_TYPE = "org.mlgit.inference"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
REDACTED = "[REDACTED]"
_RETRY_DELAYS = (0.5, 2.0)  # seconds before the 2nd and 3rd attempt of a batch


@dataclass(frozen=True, slots=True)
class PayloadLogConfig:
    url: str
    sample_rate: float
    redact: frozenset[str]
    batch_size: int
    queue_size: int
    flush_seconds: float
    timeout_seconds: float


@dataclass(slots=True)
class _Pending:
    """An event as the hot path leaves it: references to bytes it already had, nothing parsed."""

    at: float
    request_id: str | None
    model: str
    version: str
    request: bytes
    request_header_length: int | None
    response: bytes
    response_header_length: int | None


def redact(value: Any, names: frozenset[str]) -> Any:
    """`value` with the data of tensors named in `names` (OIP inputs/outputs) and the values of JSON keys
    in `names` replaced by REDACTED, at any depth."""
    if isinstance(value, list):
        return [redact(item, names) for item in value]
    if not isinstance(value, dict):
        return value
    name = value.get("name")
    if isinstance(name, str) and name in names and "data" in value:  # a list or object name is no tensor's
        return {k: (REDACTED if k == "data" else redact(v, names)) for k, v in value.items()}
    return {k: (REDACTED if k in names else redact(v, names)) for k, v in value.items()}


def _json_part(body: bytes, header_length: int | None) -> Any:
    try:
        return orjson.loads(body if header_length is None else body[:header_length])
    except orjson.JSONDecodeError:
        return None  # cannot happen for a body that was served; never fail the batch over it


def to_cloud_event(event: _Pending, names: frozenset[str]) -> dict[str, Any]:
    cloud_event: dict[str, Any] = {
        "specversion": "1.0",
        "type": EVENT_TYPE,
        "source": f"/v2/models/{event.model}/versions/{event.version}",
        # A client's request id need not be unique, and CloudEvents wants (source, id) to be: it travels
        # as the mlgitrequestid extension attribute instead.
        "id": str(uuid.uuid4()),
        "time": datetime.fromtimestamp(event.at, UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": {
            "request": redact(_json_part(event.request, event.request_header_length), names),
            "response": redact(_json_part(event.response, event.response_header_length), names),
        },
    }
    if event.request_id is not None:
        cloud_event["mlgitrequestid"] = event.request_id
    return cloud_event


class PayloadLog:
    """One per app; start() in the lifespan, offer() per request, stop() at shutdown."""

    def __init__(self, config: PayloadLogConfig, registry: CollectorRegistry) -> None:
        self.config = config
        self._random = random.Random()
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(config.queue_size)
        self._task: asyncio.Task[None] | None = None
        events = Counter(
            "mlgit_payload_events",
            "Sampled inference payload events by what became of them (sent, dropped: queue full, failed: the "
            "sink did not take them after retries).",
            ("outcome",),
            registry=registry,
        )
        self._sent = events.labels("sent")
        self._dropped = events.labels("dropped")
        self._failed = events.labels("failed")
        self._logged_errors: set[str] = set()  # exception types already logged for unencodable events

    def sampled(self) -> bool:
        """Whether this request is one of the sample_rate fraction whose payloads are offered."""
        return self._random.random() < self.config.sample_rate

    def offer(
        self,
        *,
        request_id: str | None,
        model: str,
        version: str,
        request: bytes,
        request_header_length: int | None,
        response: bytes,
        response_header_length: int | None,
    ) -> None:
        """Queue a sampled request's event (sampled() drew it); never waits."""
        event = _Pending(
            time.time(), request_id, model, version, request, request_header_length, response, response_header_length
        )
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._dropped.inc()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="payload-log")

    async def stop(self) -> None:
        """Send what is queued (one attempt per batch, within flush_seconds), then stop."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.flush_seconds):
                while not self._queue.empty():
                    await self._send(self._take(self.config.batch_size), retry=False)
        self._failed.inc(self._queue.qsize())  # what shutdown could not send

    def _take(self, limit: int) -> list[_Pending]:
        batch = []
        while len(batch) < limit and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _run(self) -> None:
        config = self.config
        while True:
            batch = [await self._queue.get()]
            deadline = asyncio.get_running_loop().time() + config.flush_seconds
            while len(batch) < config.batch_size:
                batch.extend(self._take(config.batch_size - len(batch)))
                left = deadline - asyncio.get_running_loop().time()
                if len(batch) >= config.batch_size or left <= 0:
                    break
                try:
                    async with asyncio.timeout(left):
                        batch.append(await self._queue.get())
                except TimeoutError:
                    break
            try:
                await self._send(batch, retry=True)
            except Exception as exc:  # never let one batch end payload logging for the process's life
                self._failed.inc(len(batch))
                self._log_once(exc, len(batch))

    def _log_once(self, exc: Exception, events: int) -> None:
        """Log an unexpected error the first time its type is seen: its type only, never a payload."""
        kind = type(exc).__name__
        if kind not in self._logged_errors:
            self._logged_errors.add(kind)
            logger.error("payload events could not be encoded", extra={"events": events, "error": kind})

    async def _send(self, batch: list[_Pending], *, retry: bool) -> None:
        if not batch:
            return
        try:
            body, count, errors = await asyncio.to_thread(self._encode, batch)
            if errors:  # those events are left out: the rest of the batch still goes
                self._failed.inc(len(batch) - count)
                for exc in errors:
                    self._log_once(exc, len(batch) - count)
            if not count:
                return
            problem = await self._attempts(body, _RETRY_DELAYS if retry else ())
        except asyncio.CancelledError:  # shutdown mid-send: these events are not known to have arrived
            self._failed.inc(len(batch))
            raise
        if problem is None:
            self._sent.inc(count)
            return
        self._failed.inc(count)
        logger.warning(
            "payload events not delivered", extra={"events": count, "url": self.config.url, "error": str(problem)}
        )

    def _encode(self, batch: list[_Pending]) -> tuple[bytes, int, list[Exception]]:
        """(the batch's JSON array, how many events it holds, the errors of those that could not be encoded),
        in a worker thread: one bad event never costs the others."""
        events = []
        errors = []
        for event in batch:
            try:
                events.append(orjson.dumps(to_cloud_event(event, self.config.redact)))
            except Exception as exc:
                errors.append(exc)
        return b"[" + b",".join(events) + b"]", len(events), errors

    async def _attempts(self, body: bytes, delays: tuple[float, ...]) -> Exception | None:
        """POST the batch, retrying after each of `delays`; None when the sink took it, else the last error."""
        problem: Exception | None = None
        for delay in (*delays, None):
            try:
                await asyncio.to_thread(self._post, body)
                return None
            except Exception as exc:  # URLError, HTTPError, timeouts (OSErrors), http.client's own errors
                problem = exc
            if delay is not None:
                await asyncio.sleep(delay)
        return problem

    def _post(self, body: bytes) -> None:
        """POST one encoded batch (in a worker thread); raises for anything but a 2xx answer."""
        request = urllib.request.Request(
            self.config.url, data=body, method="POST", headers={"Content-Type": BATCH_CONTENT_TYPE}
        )
        with urllib.request.urlopen(request, timeout=self.config.timeout_seconds) as response:
            response.read()
