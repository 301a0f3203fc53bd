"""Connection-level attacks on the real server process (raw sockets): oversized and slow request heads,
connections up to the cap and the open-file limit; the metrics port and HTTPS on the main port."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import re
import resource
import select
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import free_port

from .conftest import IRIS_SAMPLE, classifier, write_model
from .test_lifecycle import DEADLINE, wait_until

HEADER_LIMIT = 4096
HEADER_TIMEOUT = 1.0
CAP = 20
READY = b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n"  # a head without its final empty line


class Server:
    """`python -m mlgit_serving` on a free port, with settings from MLGIT_SERVING_* variables."""

    def __init__(
        self, repository: Path, log: Path, env: dict[str, str], preexec: Callable[[], None] | None = None
    ) -> None:
        self.port = free_port()
        self.scheme = "https" if "MLGIT_SERVING_TLS_CERT_FILE" in env else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        self.log = log
        args = [sys.executable, "-m", "mlgit_serving", "--model-repository", str(repository)]
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                [*args, "--host", "127.0.0.1", "--port", str(self.port)],
                stderr=stderr,
                env={**os.environ, **env},
                preexec_fn=preexec,
            )

    def wait_ready(self, verify: ssl.SSLContext | bool = True) -> None:
        with httpx.Client(base_url=self.url, verify=verify) as http:

            def ready() -> bool:
                assert self.process.poll() is None, self.log.read_text()[-2000:]
                try:
                    return http.get("/v2/health/ready").status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(ready, "the server became ready")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(DEADLINE)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)

    def metric(self, name: str, metrics_url: str | None = None) -> float:
        text = httpx.get(metrics_url or f"{self.url}/metrics", timeout=DEADLINE).text
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
        assert match, f"{name} not in /metrics"
        return float(match.group(1))


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def ready_on_a_new_connection(server: Server) -> int:
    with httpx.Client(base_url=server.url, timeout=DEADLINE) as http:
        return http.get("/v2/health/ready").status_code


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    write_model(root, "iris", {"1": classifier(0.0)}, {"batching": {"enabled": True}}, IRIS_SAMPLE)
    return root


@pytest.fixture(scope="module")
def limited(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "MLGIT_SERVING_MAX_HEADER_BYTES": str(HEADER_LIMIT),
        "MLGIT_SERVING_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "MLGIT_SERVING_MAX_CONNECTIONS": str(CAP),
    }
    server = Server(repository, tmp_path_factory.mktemp("limited") / "server.log", env)
    server.wait_ready()
    yield server
    server.stop()


def test_an_oversized_head_is_answered_431_and_the_server_keeps_answering(limited: Server) -> None:
    with limited.connect() as sock:
        # 1 MiB of a header that never ends: the server answers once it has read past the limit, long
        # before the head could end (and before its deadline, which would be a 408).
        sock.sendall(READY + b"X-Big: " + b"a" * (1 << 20))
        reply = answer(sock)
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
    assert b'{"error":"the request line and headers exceed 4096 bytes"}' in reply
    assert ready_on_a_new_connection(limited) == 200
    assert limited.metric('mlgit_connections_closed_total{reason="header_too_large"}') >= 1


def test_the_head_limit_holds_for_a_head_that_arrives_in_one_read(limited: Server) -> None:
    padding = b"X-Pad: " + b"p" * (HEADER_LIMIT // 2) + b"\r\n"
    with limited.connect() as sock:
        sock.sendall(READY + padding + padding + b"Connection: close\r\n\r\n")
        assert answer(sock).startswith(b"HTTP/1.1 431 ")
    with limited.connect() as sock:  # a head under the limit is served
        sock.sendall(READY + padding + b"Connection: close\r\n\r\n")
        assert answer(sock).startswith(b"HTTP/1.1 200 ")


def test_a_head_sent_too_slowly_is_cut_off(limited: Server) -> None:
    """Slowloris: a byte every 0.2 s keeps the connection busy but the head's deadline still passes."""
    started = time.monotonic()
    with limited.connect() as sock:
        for byte in READY:
            if select.select([sock], [], [], 0.2)[0]:  # the server answered (and closed): stop dripping
                break
            sock.send(bytes([byte]))
        reply = answer(sock)
        elapsed = time.monotonic() - started
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert elapsed < DEADLINE  # closed by the server, well before the drip would have ended (8 s)
    assert limited.metric('mlgit_connections_closed_total{reason="header_timeout"}') >= 1


def test_an_idle_connection_that_never_sends_is_closed_silently(limited: Server) -> None:
    with limited.connect() as sock:
        assert answer(sock) == b""


def test_at_the_connection_cap_idle_connections_make_room_and_readiness_answers(limited: Server) -> None:
    body = b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}'
    # A request mid-upload when the table fills up: it must not be the one that goes.
    uploading = limited.connect()
    uploading.sendall(
        b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body[:10]
    )
    evicted_before = limited.metric('mlgit_connections_closed_total{reason="evicted"}')
    idle = [limited.connect() for _ in range(CAP * 2)]
    try:
        for sock in idle:
            sock.sendall(READY)  # waiting for the rest of its head: evictable
        assert ready_on_a_new_connection(limited) == 200
        uploading.sendall(body[10:])
        reply = uploading.recv(65536)
        assert reply.startswith(b"HTTP/1.1 200 "), reply
        assert limited.metric('mlgit_connections_closed_total{reason="evicted"}') >= evicted_before + CAP
        assert limited.metric("mlgit_connections_open") <= CAP
    finally:
        uploading.close()
        for sock in idle:
            sock.close()


def test_a_kept_alive_connection_may_idle_past_the_head_timeout(limited: Server) -> None:
    """Between requests only the keep-alive timeout (75 s) applies: a proxy that reuses its upstream connection
    after a few idle seconds must find it open, or it answers 502."""
    with limited.connect() as sock:
        for _ in range(2):
            sock.sendall(READY + b"\r\n")
            reply = b""
            while not reply.endswith(b'{"ready":true}'):  # the answer may come in several reads
                chunk = sock.recv(65536)
                assert chunk, f"the connection closed after {reply!r}"
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 200 "), reply
            time.sleep(HEADER_TIMEOUT * 2.5)


def test_clients_that_never_read_their_answers_cannot_pin_the_connection_table(limited: Server) -> None:
    """Thousands of pipelined requests whose answers are never read would keep each connection busy, and so
    unevictable, for as long as the attacker likes (no credential needed: health is open): past 16 pipelined
    requests the connection is closed, and one whose answers are not read is evictable, so probes get in."""
    pipelined = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n" * 3000
    stuck = []
    try:
        for _ in range(CAP + 5):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
            sock.connect(("127.0.0.1", limited.port))
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.send(pipelined)
            stuck.append(sock)
        assert [ready_on_a_new_connection(limited) for _ in range(5)] == [200] * 5
        assert limited.metric('mlgit_connections_closed_total{reason="pipeline_too_deep"}') >= 1
    finally:
        for sock in stuck:
            sock.close()


def test_metrics_stay_on_the_main_port_by_default(limited: Server) -> None:
    assert limited.metric("mlgit_connections_cap") == CAP


def _low_open_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (120, 200))


def test_connections_past_the_open_file_limit_leave_readiness_answering(repository: Path, tmp_path: Path) -> None:
    """Soft limit 120, hard 200: the server raises it to 200 and caps connections at 200 - 64 reserved.
    Without the cap, accept() fails once descriptors run out and readiness's connection is dropped."""
    server = Server(repository, tmp_path / "server.log", {}, preexec=_low_open_file_limit)
    idle: list[socket.socket] = []
    try:
        server.wait_ready()
        assert server.metric("mlgit_connections_cap") == 136
        for _ in range(300):
            sock = server.connect()
            sock.sendall(READY)
            idle.append(sock)
        assert ready_on_a_new_connection(server) == 200
        assert server.metric("mlgit_connections_open") <= 136
    finally:
        for sock in idle:
            sock.close()
        server.stop()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "tls.crt", directory / "tls.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def test_https_on_the_main_port_and_metrics_only_on_the_metrics_port(repository: Path, tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    metrics_port = free_port()
    env = {
        "MLGIT_SERVING_TLS_CERT_FILE": str(cert_file),
        "MLGIT_SERVING_TLS_KEY_FILE": str(key_file),
        "MLGIT_SERVING_METRICS_PORT": str(metrics_port),
    }
    server = Server(repository, tmp_path / "server.log", env)
    try:
        trust = ssl.create_default_context(cafile=cert_file)
        server.wait_ready(verify=trust)
        with httpx.Client(base_url=server.url, verify=trust, timeout=DEADLINE) as https:
            assert https.post("/v2/models/iris/infer", json=IRIS_SAMPLE).status_code == 200
            assert https.get("/metrics").status_code == 404
        with pytest.raises(httpx.TransportError):  # plain HTTP is not spoken on the main port
            httpx.get(f"http://127.0.0.1:{server.port}/v2/health/ready", timeout=DEADLINE)
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        assert server.metric('mlgit_inference_requests_total{model="iris",status="200",version="1"}', metrics_url) == 1
    finally:
        server.stop()


def test_a_key_without_its_certificate_is_refused_at_start(repository: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "tls.key"
    key_file.write_text("not used")
    result = subprocess.run(
        [sys.executable, "-m", "mlgit_serving", "--model-repository", str(repository)],
        env={**os.environ, "MLGIT_SERVING_TLS_KEY_FILE": str(key_file)},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 1
    assert "tls_key_file is set but tls_cert_file is not" in result.stderr
