"""POST /v2/models/{name}[/versions/{version}]/feedback: ground truth for an earlier prediction.

The inference path remembers the outputs of the last N requests that carried an `id` (a bounded LRU of
feedback_memory requests and feedback_memory_bytes of outputs, whichever binds first: a segmentation mask
per request would otherwise hold hundreds of MiB at the default count); feedback names that id and gives the
true outputs as OIP tensors. Labels (integer, BOOL, BYTES outputs) are counted correct or incorrect element
by element (with numpy: one counter increment per outcome); each floating-point output adds one observation,
its mean absolute error, to a histogram, so a feedback costs the event loop O(1) observations however large
its tensors. An id is forgotten once its feedback is taken, so that a retried feedback cannot count twice.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import Request
from starlette.responses import Response

from . import openapi
from .body import receive_body
from .errors import BadRequest, NotFound, PayloadTooLarge
from .repository import ModelRepository

_ERROR_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 50.0, 100.0, 1000.0)
_MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Prediction:
    version: str
    outputs: dict[str, tuple[str, np.ndarray]]  # name -> (OIP datatype, array as returned)
    nbytes: int = field(init=False)  # what the outputs hold, computed once (BYTES outputs cost a pass)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nbytes", sum(_nbytes(array) for _, array in self.outputs.values()))


def _nbytes(array: np.ndarray) -> int:
    """An object (BYTES) array holds pointers to its elements: count each element's bytes too, so that the
    memory's byte cap bounds string outputs."""
    if array.dtype != object:
        return array.nbytes
    size = array.nbytes
    for item in array.flat:
        if isinstance(item, str):
            size += len(item.encode("utf-8", "surrogatepass"))
        elif isinstance(item, bytes | bytearray | memoryview):
            size += len(item)
        else:
            size += 8
    return size


class PredictionMemory:
    """The predictions of the last `capacity` requests with an id, at most `max_bytes` of outputs in all;
    capacity 0 remembers nothing."""

    def __init__(self, capacity: int, max_bytes: int) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._items: OrderedDict[tuple[str, str], Prediction] = OrderedDict()

    def remember(self, model: str, request_id: str, prediction: Prediction) -> None:
        if prediction.nbytes > self.max_bytes:
            return
        # Copies: a request's outputs may be views of its whole batch's arrays, which would stay alive.
        outputs = {name: (datatype, np.array(array)) for name, (datatype, array) in prediction.outputs.items()}
        self.take(model, request_id)
        self._items[(model, request_id)] = kept = Prediction(prediction.version, outputs)
        self.nbytes += kept.nbytes
        while len(self._items) > self.capacity or self.nbytes > self.max_bytes:
            _, oldest = self._items.popitem(last=False)
            self.nbytes -= oldest.nbytes

    def take(self, model: str, request_id: str) -> Prediction | None:
        prediction = self._items.pop((model, request_id), None)
        if prediction is not None:
            self.nbytes -= prediction.nbytes
        return prediction

    def put_back(self, model: str, request_id: str, prediction: Prediction) -> None:
        """After a feedback that was refused (400), so that a corrected one can still be given."""
        self.remember(model, request_id, prediction)


class FeedbackMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.outcomes = Counter(
            "mlgit_feedback",
            "Label outputs given feedback, element by element, by whether the prediction was right.",
            ("model", "version", "outcome"),
            registry=registry,
        )
        self.error = Histogram(
            "mlgit_prediction_error",
            "Mean absolute error of a floating-point output given feedback: one observation per output "
            "tensor per feedback (the mean over its elements).",
            ("model", "version"),
            buckets=_ERROR_BUCKETS,
            registry=registry,
        )


def _parse(body: bytes) -> tuple[str, list[dict[str, Any]]]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"feedback body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("id"), str) or not parsed["id"]:
        raise BadRequest('feedback needs "id": the id of the inference request, a non-empty string')
    outputs = parsed.get("outputs")
    if not isinstance(outputs, list) or not outputs or not all(isinstance(o, dict) for o in outputs):
        raise BadRequest('feedback needs "outputs": a non-empty list of tensors {"name", "shape", "data"}')
    return parsed["id"], outputs


def _kind(datatype: str) -> str:
    if datatype == "BOOL":
        return "bool"
    if datatype == "BYTES":
        return "bytes"
    if datatype.startswith("FP"):
        return "float"
    return "int"


_ALLOWED = {"bool": {bool}, "bytes": {str}, "float": {int, float}, "int": {int}}
_NEEDS = {"bool": "true or false", "bytes": "strings", "float": "finite numbers", "int": "integers"}
_JSON_NAMES = {bool: "boolean", str: "string", int: "integer", float: "number", list: "list", dict: "object"}


def _shape(name: str, tensor: dict[str, Any], predicted: np.ndarray) -> None:
    if "shape" not in tensor or tensor["shape"] is None:
        return
    shape = tensor["shape"]
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise BadRequest(f'feedback output {name!r}: "shape" must be a list of integers, got {shape!r}')
    if shape != list(predicted.shape):
        raise BadRequest(
            f"feedback output {name!r}: shape {shape} differs from the prediction's {list(predicted.shape)}"
        )


def _truth(name: str, tensor: dict[str, Any], datatype: str, predicted: np.ndarray) -> np.ndarray:
    """The given data as a flat array comparable with the prediction; BadRequest for anything else."""
    _shape(name, tensor, predicted)
    data = tensor.get("data")
    if not isinstance(data, list):
        raise BadRequest(f'feedback output {name!r}: "data" must be a flat list of elements')
    if len(data) != predicted.size:
        raise BadRequest(f"feedback output {name!r}: {len(data)} elements given, the prediction has {predicted.size}")
    kind = _kind(datatype)
    wrong = set(map(type, data)) - _ALLOWED[kind]
    if wrong:
        got = ", ".join(sorted(_JSON_NAMES.get(t, "null" if t is type(None) else t.__name__) for t in wrong))
        flat = "" if not wrong & {list, dict} else " (a flat list)"
        raise BadRequest(
            f"feedback output {name!r}: data of its {datatype} type must be {_NEEDS[kind]}{flat}, got {got}"
        )
    if kind == "bool":
        return np.array(data, dtype=bool)
    if kind == "bytes":
        return np.array(data, dtype=object)
    if kind == "float":
        try:
            truth = np.array(data, dtype=np.float64)
        except OverflowError:
            truth = np.array([math.inf])
        limit = float(np.finfo(predicted.dtype).max) if predicted.dtype.kind == "f" else math.inf
        if truth.size and not (np.isfinite(truth).all() and float(np.abs(truth).max()) <= limit):
            raise BadRequest(f"feedback output {name!r}: data has a value out of its {datatype} type's range")
        return truth
    info = np.iinfo(predicted.dtype) if predicted.dtype.kind in "iu" else np.iinfo(np.int64)
    try:
        truth = np.array(data, dtype=np.uint64 if info.min == 0 and info.bits == 64 else np.int64)
    except OverflowError:
        truth = None
    if truth is None or (truth.size and (int(truth.min()) < info.min or int(truth.max()) > info.max)):
        raise BadRequest(
            f"feedback output {name!r}: data has a value out of its {datatype} type's range [{info.min}, {info.max}]"
        )
    return truth.astype(predicted.dtype, copy=False)


def score(prediction: Prediction, outputs: list[dict[str, Any]]) -> list[tuple[str, str, int | float, int]]:
    """(output name, "label", correct, elements) or (output name, "error", mean absolute error, elements) for
    each given output, all checked before any is scored; raises BadRequest."""
    seen: set[str] = set()
    checked = []
    for position, tensor in enumerate(outputs):
        name = tensor.get("name")
        if not isinstance(name, str):
            raise BadRequest(f'feedback output {position}: "name" must be a string, got {name!r}')
        if name in seen:
            raise BadRequest(f"feedback output {name!r} is given twice")
        seen.add(name)
        if name not in prediction.outputs:
            raise BadRequest(f"feedback output {name!r}: the request returned {sorted(prediction.outputs)}")
        datatype, predicted = prediction.outputs[name]
        checked.append((name, datatype, predicted.reshape(-1), _truth(name, tensor, datatype, predicted)))
    scored: list[tuple[str, str, int | float, int]] = []
    for name, datatype, predicted, truth in checked:
        if _kind(datatype) == "float":
            error = float(np.abs(predicted.astype(np.float64) - truth).mean()) if truth.size else 0.0
            scored.append((name, "error", error, truth.size))
        else:
            scored.append((name, "label", int(np.count_nonzero(predicted == truth)), truth.size))
    return scored


def add_feedback_routes(
    app: FastAPI, repository: ModelRepository, memory: PredictionMemory, metrics: FeedbackMetrics
) -> None:
    body_timeout = app.state.serving.settings.request_body_timeout_seconds

    async def feedback(request: Request, model_name: str, model_version: str | None = None) -> Response:
        mv = repository.get(model_name, model_version)  # 404 for an unknown model or version
        try:
            body = await receive_body(request, _MAX_BODY_BYTES, body_timeout, "feedback")
        except PayloadTooLarge:
            raise PayloadTooLarge(f"feedback body is larger than {_MAX_BODY_BYTES} bytes") from None
        request_id, outputs = _parse(body)
        del body
        prediction = memory.take(model_name, request_id)
        if prediction is None or (model_version is not None and prediction.version != mv.version):
            if prediction is not None:
                memory.put_back(model_name, request_id, prediction)
            raise NotFound(
                f"no prediction of {model_name!r}{'' if model_version is None else f' version {mv.version!r}'} "
                f"with id {request_id!r} is remembered: unknown, already given feedback, or older than the "
                f"last {memory.capacity} requests with an id"
            )
        try:
            scored = score(prediction, outputs)
        except Exception:  # a 400 (or a bug): the prediction can still be given a corrected feedback
            memory.put_back(model_name, request_id, prediction)
            raise
        summary = []
        for name, kind, value, size in scored:
            if kind == "label":
                correct = int(value)
                metrics.outcomes.labels(model_name, prediction.version, "correct").inc(correct)
                metrics.outcomes.labels(model_name, prediction.version, "incorrect").inc(size - correct)
                summary.append({"name": name, "correct": correct, "incorrect": size - correct})
            else:
                if size and math.isfinite(value):  # a NaN or infinite prediction would poison the sum
                    metrics.error.labels(model_name, prediction.version).observe(value)
                summary.append({"name": name, "mean_absolute_error": value})
        content = {"model_name": model_name, "model_version": prediction.version, "id": request_id, "outputs": summary}
        return Response(orjson.dumps(content), media_type="application/json")

    extra = {"requestBody": {"required": True, "content": {"application/json": {"schema": openapi.FEEDBACK_REQUEST}}}}
    for suffix in ("", "/versions/{model_version}"):
        app.add_api_route(
            f"/v2/models/{{model_name}}{suffix}/feedback",
            feedback,
            methods=["POST"],
            tags=["monitoring"],
            summary="Feedback: the true outputs of an earlier inference request",
            openapi_extra=extra,
            responses={200: openapi.json_body(openapi.FEEDBACK_RESPONSE, "Feedback taken"), **openapi.errors(400, 404)},
        )
