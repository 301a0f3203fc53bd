"""The smoke check: the model reports ready, and the sample request gets the expected answer.

Two endpoints carry the same check. After `mlgit deploy` the request reaches a pod through a
port-forward opened by the kubernetes client (the API server and kubelet tunnel it into the pod's own
network namespace). Unlike the API server's service proxy, that path is not blocked by the
NetworkPolicy mlgit renders, which admits only the ingress controller's namespaces; it needs RBAC
`create` on `pods/portforward`. `deploy --skip-smoke` (or MLGIT_DEPLOY_SKIP_SMOKE=1) leaves the check
out. In the pipeline's image-smoke job, `mlgit smoke --url` reaches the freshly built image, started as
the job's service container, over plain HTTP.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from kubernetes import client
from kubernetes.stream import portforward

from mlgit.cluster.client import Cluster, api_errors
from mlgit.cluster.objects import pod_selector
from mlgit.config.load import Project
from mlgit.errors import MlgitError
from mlgit.samples.tensors import compare_outputs, from_oip

READY_TIMEOUT = 60.0


class Endpoint(Protocol):
    """Somewhere an OIP v2 request can be sent: returns the HTTP status and the decoded JSON body."""

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]: ...


class _Forwarded(http.client.HTTPConnection):
    """An HTTP connection whose socket is a fresh port-forward to the pod, never a local TCP connect."""

    def __init__(self, open_socket: Callable[[], socket.socket]) -> None:
        super().__init__("localhost", timeout=60)
        self._open_socket = open_socket

    def connect(self) -> None:
        self.sock = self._open_socket()


class PortForwardEndpoint:
    def __init__(self, cluster: Cluster, namespace: str, pod: str, port: int) -> None:
        self.cluster, self.namespace, self.pod, self.port = cluster, namespace, pod, port

    def _socket(self) -> socket.socket:
        core = client.CoreV1Api(self.cluster.api_client)
        with api_errors(f"port-forward to pod {self.pod}", self.cluster.context):
            try:
                forward = portforward(
                    core.connect_get_namespaced_pod_portforward, self.pod, self.namespace, ports=str(self.port)
                )
            except client.ApiException as exc:
                # The websocket upgrade's failure arrives as status 0 with the HTTP status only in its text.
                if exc.status == 0 and "403" in str(exc.reason):
                    raise MlgitError(
                        f"forbidden: cannot port-forward to pod {self.pod} for the smoke check "
                        f"(context {self.cluster.context})",
                        "grant `create` on pods/portforward to the deploy credentials, or skip the smoke check "
                        "with --skip-smoke or MLGIT_DEPLOY_SKIP_SMOKE=1",
                    ) from None
                raise
        sock = forward.socket(self.port)
        sock.settimeout(60)
        return sock

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        connection = _Forwarded(self._socket)
        try:
            payload = None if body is None else json.dumps(body)
            connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise MlgitError(f"smoke check: no answer from pod {self.pod} through the port-forward: {exc}") from None
        finally:
            connection.close()
        try:
            return response.status, json.loads(raw or b"null")
        except ValueError:
            return response.status, raw.decode(errors="replace")


class HttpEndpoint:
    """An OIP v2 server at a URL. A refused or dropped connection reads as status 0, so the readiness
    poll keeps waiting while the service container is still starting."""

    def __init__(self, url: str) -> None:
        # No proxy: the service container is on the runner's own network, never behind HTTP(S)_PROXY.
        self.client = httpx.Client(base_url=url, timeout=60, trust_env=False)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        try:
            response = self.client.request(method, path, json=body)
        except httpx.TransportError as exc:
            return 0, f"{type(exc).__name__}: {exc}"
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def close(self) -> None:
        self.client.close()


def _ready_pod(cluster: Cluster, deployment: dict[str, Any]) -> str:
    pods = cluster.list("v1", "Pod", deployment["metadata"]["namespace"], pod_selector(deployment))
    ready = [
        p
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (p.get("status") or {}).get("conditions") or []
        )
    ]
    if not ready:
        raise MlgitError(f"smoke check: deployment {deployment['metadata']['name']} has no ready pod")
    ready.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True)
    return str(ready[0]["metadata"]["name"])


@contextlib.contextmanager
def open_endpoint(cluster: Cluster, deployment: dict[str, Any]) -> Iterator[Endpoint]:
    """An endpoint on the newest ready pod of the Deployment, at its first container's first port."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    port = int(((containers[0].get("ports") or [{}])[0]).get("containerPort", 8080))
    yield PortForwardEndpoint(cluster, deployment["metadata"]["namespace"], _ready_pod(cluster, deployment), port)


@dataclass(frozen=True)
class SmokeResult:
    message: str
    latency_ms: float  # the sample request's round trip, recorded as promotion evidence

    def __str__(self) -> str:
        return f"{self.message} ({self.latency_ms:.1f} ms)"


def smoke_check(endpoint: Endpoint, project: Project, ready_timeout: float = READY_TIMEOUT) -> SmokeResult:
    """Wait for the model to be ready, send the sample, compare with the expected outputs."""
    name, sample = project.config.name, project.sample
    deadline = time.monotonic() + ready_timeout
    while True:
        status, body = endpoint.request("GET", f"/v2/models/{name}/ready")
        if status == 200:
            break
        if time.monotonic() > deadline:
            raise MlgitError(f"smoke check: model {name} not ready after {ready_timeout:g}s (HTTP {status}: {body})")
        time.sleep(1)
    started = time.perf_counter()
    status, body = endpoint.request("POST", f"/v2/models/{name}/infer", {"inputs": sample["inputs"]})
    latency_ms = (time.perf_counter() - started) * 1000
    if status != 200 or not isinstance(body, dict):
        raise MlgitError(f"smoke check: the sample request failed with HTTP {status}: {body}")
    actual = {t["name"]: from_oip(t) for t in body.get("outputs") or []}
    expected = sample.get("expected_outputs")
    if not expected:
        message = f"model {name} answered the sample ({', '.join(actual)}); no expected outputs to compare"
        return SmokeResult(message, latency_ms)
    settings = project.config.model.sample
    problems = compare_outputs(expected, actual, settings.rtol, settings.atol)
    if problems:
        raise MlgitError(
            f"smoke check: model {name} answered the sample differently than expected",
            "the deployed image may hold another model; compare the digests",
            problems=problems,
        )
    return SmokeResult(f"model {name} is ready and answered the sample as expected", latency_ms)


def smoke_url(project: Project, url: str, ready_timeout: float) -> SmokeResult:
    """The smoke check against the server at `url`: in the pipeline, the built image as a service container."""
    endpoint = HttpEndpoint(url)
    try:
        return smoke_check(endpoint, project, ready_timeout=ready_timeout)
    finally:
        endpoint.close()
