"""The hostile-request report of issue 16: each attack against a fresh server process, as the iris example's
pod runs it; for each, the status the attacker got, how long readiness took to answer meanwhile (a probe on a
new connection every 0.25 s, as the kubelet does) and the server's peak and remaining RSS.

    python bench/hostile/attacks.py [--only NAME ...] [--out bench/hostile/RESULTS.md]

The model repository holds the iris example (examples/iris-classifier: its model and model-settings.json as
committed, max_request_bytes 16 MiB in a 512 MiB pod), `iris_64mib` (the same model with max_request_bytes
64 MiB, the size of the issue's bodies) and two BYTES identities, `text` (16 MiB) and `text_64mib`. The server
runs with the example Deployment's environment (metrics port on) and a soft/hard open-file limit of 1024/4096 so
that "up to the fd limit" is reachable from this process. Each peak is compared with the memory limit of the pod
that may run the attacked model: `mlgit validate` refuses a max_request_bytes whose decoded JSON would not fit
(17 x max_request_bytes + 128 MiB must be within resources.limits.memory), so a 64 MiB body needs at least
1,216 MiB, and mlgit's default limit (2 GiB) is that pod's.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import onnx
from onnx import TensorProto, helper

from mlgit_serving.settings import ServerSettings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "iris-classifier"
EXAMPLE_POD_MIB = 512  # examples/iris-classifier/mlgit.yaml: serving.resources.limits.memory
DEFAULT_POD_MIB = 2048  # mlgit's default serving.resources.limits.memory, which 64 MiB bodies need
OPEN_FILES = (1024, 4096)
MIB = 1 << 20
ROW = {"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}
PROBE_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_repository(root: Path) -> None:
    settings = json.loads((EXAMPLE / "model-settings.json").read_text())
    for name, overrides in (("iris-classifier", {}), ("iris_64mib", {"max_request_bytes": 64 * MIB})):
        (root / name / "1").mkdir(parents=True)
        shutil.copy(EXAMPLE / "model" / "model.onnx", root / name / "1" / "model.onnx")
        (root / name / "model-settings.json").write_text(json.dumps({**settings, "name": name, **overrides}))
    text = helper.make_graph(
        [helper.make_node("Identity", ["text"], ["same"])],
        "text",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["N"])],
        [helper.make_tensor_value_info("same", TensorProto.STRING, ["N"])],
    )
    model = helper.make_model(text, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    for name, limit in (("text", 16 * MIB), ("text_64mib", 64 * MIB)):
        (root / name / "1").mkdir(parents=True)
        onnx.save(model, root / name / "1" / "model.onnx")
        (root / name / "model-settings.json").write_text(json.dumps({"name": name, "max_request_bytes": limit}))


class Server:
    def __init__(self, repository: Path, log: Path) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "MLGIT_SERVING_MODEL_REPOSITORY": str(repository),
            "MLGIT_SERVING_HOST": "127.0.0.1",
            "MLGIT_SERVING_PORT": str(self.port),
            "MLGIT_SERVING_METRICS_PORT": str(self.metrics_port),
            "MLGIT_SERVING_DRAIN_SECONDS": "20",
        }
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlgit_serving"],
                env=env,
                stderr=stderr,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, OPEN_FILES),
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)

    def memory_kib(self, field_name: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
        raise LookupError(field_name)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(30)


@dataclass
class Probe:
    """Readiness on a new connection every 0.25 s while an attack runs."""

    url: str
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status = httpx.get(f"{self.url}/v2/health/ready", timeout=PROBE_TIMEOUT).status_code
                if status != 200:
                    self.failures.append(str(status))
            except httpx.HTTPError as exc:
                self.failures.append(type(exc).__name__)
            self.latencies.append(time.monotonic() - started)
            self._stop.wait(max(0.0, 0.25 - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(PROBE_TIMEOUT + 5)


def post(server: Server, model: str, body: bytes, headers: dict[str, str] | None = None) -> str:
    try:
        response = httpx.post(
            f"{server.url}/v2/models/{model}/infer",
            content=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=300,
        )
    except httpx.HTTPError as exc:
        return type(exc).__name__
    error = response.json().get("error", "") if response.status_code != 200 else ""
    return f"{response.status_code} {error[:70]}".strip()


def raw_status(reply: bytes) -> str:
    line = reply.split(b"\r\n", 1)[0].decode(errors="replace")
    return line.removeprefix("HTTP/1.1 ") if line else "closed, no answer"


# Attacks: each returns what the attacker got.
def gzip_members(server: Server) -> str:
    body = gzip.compress(b"") * (9_600_000 // 20) + gzip.compress(json.dumps({"inputs": [ROW]}).encode())
    return post(server, "iris-classifier", body, {"Content-Encoding": "gzip"})


def _json_rows(size: int, extra: str = "") -> bytes:
    row = "5.1,3.5,1.4,0.2,"
    rows = (size - 200 - len(extra)) // len(row)
    data = (row * rows)[:-1]
    head = f'{{"inputs":[{{"name":"input","datatype":"FP32","shape":[{rows},4],"data":['
    return (head + data + "]}]" + extra + "}").encode()


def json_64mib_example(server: Server) -> str:
    return post(server, "iris-classifier", _json_rows(64 * MIB - 1024))


def json_64mib(server: Server) -> str:
    return post(server, "iris_64mib", _json_rows(64 * MIB - 1024))


def _empty_strings(server: Server, model: str, count: int) -> str:
    data = ",".join(['""'] * count)
    body = f'{{"inputs":[{{"name":"text","datatype":"BYTES","shape":[{count}],"data":[{data}]}}]}}'
    return post(server, model, body.encode())


def bytes_empty_strings(server: Server) -> str:
    return _empty_strings(server, "text_64mib", 16_700_000)


def bytes_empty_strings_example(server: Server) -> str:
    return _empty_strings(server, "text", 16 * MIB // 3 - 100)  # as many as a 16 MiB body holds


def huge_headers(server: Server) -> str:
    """Three 300 MiB headers, streamed; the answer is read while sending."""
    reply: list[bytes] = []
    with socket.create_connection(("127.0.0.1", server.port), timeout=120) as sock:
        reader = threading.Thread(target=lambda: reply.append(sock.recv(4096)), daemon=True)
        reader.start()
        chunk = b"a" * MIB
        try:
            sock.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n")
            for index in range(3):
                sock.sendall(b"X-Big-%d: " % index)
                for _ in range(300):
                    sock.sendall(chunk)
                sock.sendall(b"\r\n")
            sock.sendall(b"\r\n")
        except OSError as exc:
            sent = f" (sending stopped: {type(exc).__name__})"
        else:
            sent = " (all 900 MiB sent)"
        reader.join(120)
    return raw_status(reply[0] if reply else b"") + sent


def slow_headers(server: Server) -> str:
    """A head dripped one byte per second; how long the server keeps the connection (the issue: 130 s)."""
    head = b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n" + b"X-Drip: " + b"d" * 200
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=150) as sock:
        try:
            for byte in head:
                sock.send(bytes([byte]))
                if time.monotonic() - started > 130:
                    return "still open after 130 s"
                time.sleep(1)
            reply = sock.recv(4096)
        except OSError:
            reply = b""
        with contextlib.suppress(OSError):
            reply = reply or sock.recv(4096)
    return f"{raw_status(reply)} after {time.monotonic() - started:.0f} s"


def idle_connections(server: Server) -> str:
    """More idle connections than the server's open-file limit (4096 after it raises its soft limit)."""
    sockets = []
    try:
        for _ in range(5000):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sockets.append(sock)
        time.sleep(3)
        return f"5000 opened; {httpx.get(f'{server.url}/v2/health/live', timeout=30).status_code} to a new request"
    finally:
        for sock in sockets:
            sock.close()


def partial_heads(server: Server) -> str:
    """4,000 connections (past the cap), each holding a partial head 1 KiB under max_header_bytes."""
    pad = b"p" * (ServerSettings.model_fields["max_header_bytes"].default - 1024)
    sockets = []
    try:
        for _ in range(4000):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(b"GET / HTTP/1.1\r\nX-Pad: " + pad)
            sockets.append(sock)
        time.sleep(3)
        return f"4000 sent; {post(server, 'iris-classifier', json.dumps({'inputs': [ROW]}).encode())} to a request"
    finally:
        for sock in sockets:
            sock.close()


def stalled_uploads(server: Server) -> str:
    """1,030 uploads that stall after their head and 10 bytes; then 20 real requests."""
    body = json.dumps({"inputs": [ROW]}).encode()
    head = (
        b"POST /v2/models/iris-classifier/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    sockets = []
    try:
        for _ in range(1030):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(head + body[:10])
            sockets.append(sock)
        time.sleep(2)
        outcomes = [post(server, "iris-classifier", body) for _ in range(20)]
        return "real requests: " + ", ".join(f"{outcomes.count(o)}x {o}" for o in sorted(set(outcomes)))
    finally:
        for sock in sockets:
            sock.close()


def empty_inputs(server: Server) -> str:
    return post(server, "iris-classifier", b'{"inputs": []}')


def huge_request_id(server: Server) -> str:
    body = json.dumps({"id": "i" * (60 * MIB), "inputs": [ROW]}).encode()
    return post(server, "iris_64mib", body)


def underscore_header_length(server: Server) -> str:
    body = json.dumps({"inputs": [ROW]}).encode()
    return post(server, "iris-classifier", body, {"Inference-Header-Content-Length": "1_0"})


# name -> (title, attack, memory limit of the pod that may run the attacked model, MiB)
ATTACKS: dict[str, tuple[str, Callable[[Server], str], int]] = {
    "gzip_members": ("480,000 empty gzip members (9.6 MB body)", gzip_members, EXAMPLE_POD_MIB),
    "json_64mib_example": (
        "64 MiB JSON body, the example's max_request_bytes (16 MiB)",
        json_64mib_example,
        EXAMPLE_POD_MIB,
    ),
    "json_64mib": ("64 MiB JSON body, max_request_bytes 64 MiB", json_64mib, DEFAULT_POD_MIB),
    "bytes_empty_example": (
        "BYTES input of 5.6M empty strings (a 16 MiB body, the example's limit)",
        bytes_empty_strings_example,
        EXAMPLE_POD_MIB,
    ),
    "bytes_empty": (
        "BYTES input of 16.7M empty strings (max_request_bytes 64 MiB)",
        bytes_empty_strings,
        DEFAULT_POD_MIB,
    ),
    "huge_headers": ("three 300 MiB headers", huge_headers, EXAMPLE_POD_MIB),
    "slow_headers": ("a head dripped at 1 byte/s", slow_headers, EXAMPLE_POD_MIB),
    "idle_connections": ("5,000 idle connections (open-file limit 4,096)", idle_connections, EXAMPLE_POD_MIB),
    "partial_heads": (
        "4,000 connections, each with a partial head just under max_header_bytes",
        partial_heads,
        EXAMPLE_POD_MIB,
    ),
    "stalled_uploads": ("1,030 stalled uploads, then real requests", stalled_uploads, EXAMPLE_POD_MIB),
    "empty_inputs": ('`"inputs": []`', empty_inputs, EXAMPLE_POD_MIB),
    "huge_id": ("60 MiB request id (max_request_bytes 64 MiB)", huge_request_id, DEFAULT_POD_MIB),
    "header_length": ("`Inference-Header-Content-Length: 1_0`", underscore_header_length, EXAMPLE_POD_MIB),
}


def run_attack(name: str, repository: Path, logs: Path) -> dict[str, str]:
    title, attack, pod_mib = ATTACKS[name]
    server = Server(repository, logs / f"{name}.log")
    try:
        idle_kib = server.memory_kib("VmRSS")
        probe = Probe(server.url)
        started = time.monotonic()
        outcome = attack(server)
        took = time.monotonic() - started
        time.sleep(1)  # the probe sees the aftermath too
        probe.stop()
        time.sleep(2)
        after_kib = server.memory_kib("VmRSS")
        peak_kib = server.memory_kib("VmHWM")
    finally:
        server.stop()
    worst = max(probe.latencies) if probe.latencies else float("nan")
    readiness = (
        f"worst {worst:.2f} s, median {statistics.median(probe.latencies):.3f} s ({len(probe.latencies)} probes)"
    )
    if probe.failures:
        readiness += f"; failed: {', '.join(sorted(set(probe.failures)))} x{len(probe.failures)}"
    return {
        "attack": title,
        "status": outcome,
        "readiness": readiness,
        "peak": f"{peak_kib / 1024:.0f} MiB" + (" **over the pod limit**" if peak_kib / 1024 > pod_mib else ""),
        "pod": f"{pod_mib} MiB",
        "rss": f"{idle_kib / 1024:.0f} -> {after_kib / 1024:.0f} MiB",
        "took": f"{took:.1f} s",
    }


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    load = os.getloadavg()[0]
    return (
        f"{platform.platform()}, {cpu}, {os.cpu_count()} cores, {int(memory) // 1024 // 1024} GiB, "
        f"Python {platform.python_version()}, load average {load:.1f} at the start"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(ATTACKS), help="run these attacks only")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlgit-hostile-") as scratch:
        repository, logs = Path(scratch) / "models", Path(scratch) / "logs"
        logs.mkdir()
        write_repository(repository)
        header = machine()
        rows = []
        for name in args.only or ATTACKS:
            print(f"{name} ...", file=sys.stderr, flush=True)
            row = run_attack(name, repository, logs)
            print(f"  {row}", file=sys.stderr, flush=True)
            rows.append(row)
    lines = [
        "# Hostile requests (issue 16): `python bench/hostile/attacks.py`",
        "",
        f"Machine: {header}.",
        f"Server: `python -m mlgit_serving`, a fresh process per attack, the iris example's model and settings, "
        f"the example Deployment's environment, open-file limit {OPEN_FILES[0]}/{OPEN_FILES[1]}; the pod limit "
        "column is the memory limit of the pod that may serve the attacked model (see the script's docstring). "
        "Readiness: GET /v2/health/ready on a new connection every 0.25 s during the attack "
        "(target: answered within 2 s). Peak RSS: VmHWM of the server process (start-up and model load included); "
        "RSS: before the attack -> 2 s after it.",
        "",
        "| attack | what the attacker got | readiness during it | peak RSS | pod limit | RSS | attack took |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        cells = [
            row[key].replace("|", "\\|") for key in ("attack", "status", "readiness", "peak", "pod", "rss", "took")
        ]
        lines.append("| " + " | ".join(cells) + " |")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
