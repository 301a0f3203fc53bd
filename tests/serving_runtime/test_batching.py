"""Adaptive batching: stacking, splitting, shape groups, failure isolation and the bounded queue."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import gevent
import httpx
import numpy as np
import tritonclient.http as triton

from .conftest import RunningServer, classify


def _histogram(metrics: str, name: str, model: str) -> tuple[float, float]:
    """(count, sum) of a histogram for one model."""
    values = []
    for suffix in ("count", "sum"):
        match = re.search(rf'{name}_{suffix}{{model="{model}",version="1"}} (\S+)', metrics)
        assert match, f"{name}_{suffix} for {model} missing"
        values.append(float(match.group(1)))
    return values[0], values[1]


def _pending(server: RunningServer, model: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    return float(re.search(rf'mlgit_inference_pending_requests{{model="{model}",version="1"}} (\S+)', text).group(1))


def test_concurrent_requests_are_batched_and_split_back(server: RunningServer) -> None:
    """While the model is busy, requests queue up; they then run as batches of up to max_batch_size (8)."""
    before, _ = _histogram(httpx.get(f"{server.url}/metrics").text, "mlgit_inference_batch_size", "iris_batched")
    model = server.app.state.serving.repository.get("iris_batched").model
    busy = threading.Event()
    model._executor.submit(busy.wait, 60)  # occupy the model's only inference thread (until busy.set())
    rng = np.random.default_rng(3)
    requests = [rng.random((1 + i % 3, 4), dtype=np.float32) for i in range(24)]
    client = triton.InferenceServerClient(url=server.address, concurrency=len(requests))
    try:
        pending = []
        for i, x in enumerate(requests):
            tensor = triton.InferInput("input", list(x.shape), "FP32")
            tensor.set_data_from_numpy(x, binary_data=i % 2 == 0)
            pending.append(client.async_infer("iris_batched", [tensor], request_id=str(i)))
        deadline = time.monotonic() + 30
        while (queued := _pending(server, "iris_batched")) < len(requests):
            assert time.monotonic() < deadline, f"{queued} of {len(requests)} requests queued after 30 s"
            gevent.sleep(0.01)  # the client's greenlets send while this one polls
        busy.set()
        for i, (x, future) in enumerate(zip(requests, pending, strict=True)):
            result = future.get_result()
            assert result.get_response()["id"] == str(i)
            label, probabilities = classify(x, 0.0)
            np.testing.assert_array_equal(result.as_numpy("label"), label)
            np.testing.assert_allclose(result.as_numpy("probabilities"), probabilities, rtol=1e-5, atol=1e-6)
    finally:
        busy.set()
        client.close()
    after, _ = _histogram(httpx.get(f"{server.url}/metrics").text, "mlgit_inference_batch_size", "iris_batched")
    assert after - before <= len(requests) // 2  # 48 rows in batches of at most 8


def _post_many(server: RunningServer, model: str, bodies: list[dict]) -> list[httpx.Response]:
    with httpx.Client(base_url=server.url, timeout=30) as http, ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda body: http.post(f"/v2/models/{model}/infer", json=body), bodies))


def test_one_bad_request_does_not_fail_its_batch_mates(server: RunningServer) -> None:
    indices = [[1], [2, 3], [20], [4], [5, 6, 7], [8], [9], [0]]  # 20 is past the table: onnxruntime fails
    bodies = [
        {"id": str(i), "inputs": [{"name": "index", "datatype": "INT64", "shape": [len(idx)], "data": idx}]}
        for i, idx in enumerate(indices)
    ]
    responses = _post_many(server, "lookup", bodies)
    for idx, response in zip(indices, responses, strict=True):
        if 20 in idx:
            assert response.status_code == 400, response.text
            assert "indices element out of data bounds" in response.json()["error"]
        else:
            assert response.status_code == 200, response.text
            assert response.json()["outputs"][0]["data"] == [10.0 * i for i in idx]


def test_incompatible_shapes_run_in_separate_batches(server: RunningServer) -> None:
    shapes = [(2, 3), (1, 5), (3, 3), (2, 5), (1, 1)]
    inputs = [np.arange(r * c, dtype=np.float32).reshape(r, c) for r, c in shapes]
    bodies = [
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}]}
        for x in inputs
    ]
    for x, response in zip(inputs, _post_many(server, "rowsum", bodies), strict=True):
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"] == x.sum(axis=1).tolist()


def test_inputs_disagreeing_on_batch_size_never_share_a_batch(server: RunningServer) -> None:
    """Stacked with a batch-mate, such a request's outputs would be sliced at another client's rows."""

    def body(a: list[float], b: list[float]) -> dict:
        return {
            "inputs": [
                {"name": n, "datatype": "FP32", "shape": [len(v), 1], "data": v} for n, v in (("a", a), ("b", b))
            ]
        }

    first, second = body([100], [200, 201]), body([300, 301], [400])
    bodies = [first, second] * 20

    async def post_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(bodies))
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as http:
            return await asyncio.gather(*(http.post("/v2/models/two/infer", json=b) for b in bodies))

    responses = asyncio.run(post_all())
    for sent, response in zip(bodies, responses, strict=True):
        assert response.status_code == 200, response.text
        got = {o["name"]: o["data"] for o in response.json()["outputs"]}
        assert got == {"a_out": sent["inputs"][0]["data"], "b_out": sent["inputs"][1]["data"]}
