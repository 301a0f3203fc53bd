"""Whole-body reads (http_protocol.BodyBuffer): a large binary body that arrives in many pieces, part of it
before the application asks for it, then a pipelined request on the same connection."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from io import BufferedReader

import numpy as np
import pytest

from .conftest import RunningServer, row_sum, start_server, stop_server, write_model

COLUMNS = 393_216  # 1.5 MiB of FP32: the size of a 32-image [3,64,64] batch


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("models")
    write_model(root, "sum", {"1": row_sum()}, {"max_request_bytes": 4 * 1024 * 1024})
    running = start_server(root)
    running.wait_ready()
    yield running
    stop_server(running)


def binary_request(values: np.ndarray) -> bytes:
    values = values.astype("<f4")
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": list(values.shape),
                    "parameters": {"binary_data_size": values.nbytes},
                }
            ]
        }
    ).encode()
    body = header + values.tobytes()
    head = (
        f"POST /v2/models/sum/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        f"Inference-Header-Content-Length: {len(header)}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def read_response(stream: BufferedReader, pending: bytearray) -> dict:
    """One HTTP/1.1 response with a Content-Length body from a socket, leaving what follows in `pending`."""
    while b"\r\n\r\n" not in pending:
        pending += stream.read1(65536) or b""
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), rest[:300]
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(rest) < length:
        rest += stream.read1(65536) or b""
    pending[:] = rest[length:]
    return json.loads(rest[:length])


def test_a_large_body_in_pieces_then_a_pipelined_request(server: RunningServer) -> None:
    rng = np.random.default_rng(0)
    first, second = rng.standard_normal((1, COLUMNS)), rng.standard_normal((1, 8))
    big = binary_request(first)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        # The head with the first 100 KB of the body in one write (it arrives before the application asks
        # for the body), then the rest in 40 pieces, then a second request right behind it.
        split = big.index(b"\r\n\r\n") + 100_000
        sock.sendall(big[:split])
        time.sleep(0.05)
        pieces = np.array_split(np.frombuffer(big[split:], np.uint8), 40)
        for piece in pieces[:-1]:
            sock.sendall(piece.tobytes())
            time.sleep(0.002)
        sock.sendall(pieces[-1].tobytes() + binary_request(second))
        stream = sock.makefile("rb")
        pending = bytearray()
        answers = [read_response(stream, pending), read_response(stream, pending)]
    totals = [answer["outputs"][0]["data"][0] for answer in answers]
    assert totals == pytest.approx([first.astype(np.float32).sum(), second.astype(np.float32).sum()], rel=1e-4)
