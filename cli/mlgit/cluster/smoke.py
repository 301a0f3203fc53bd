"""The smoke check after `mlgit deploy`: the check of `mlgit.smoke`, sent through a port-forward to a pod.

The kubernetes client opens the port-forward (the API server and kubelet tunnel it into the pod's own
network namespace). Unlike the API server's service proxy, that path is not blocked by the
NetworkPolicy mlgit renders, which admits only the ingress controller's namespaces; it needs RBAC
`create` on `pods/portforward`. `deploy --skip-smoke` (or MLGIT_DEPLOY_SKIP_SMOKE=1) leaves the check
out. `mlgit smoke --url`, which needs no cluster, runs the same check over HTTP(S) without this module.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import client
from kubernetes.stream import portforward

from mlgit.cluster.client import Cluster, api_errors
from mlgit.cluster.objects import pod_selector
from mlgit.errors import MlgitError
from mlgit.smoke import REQUEST_TIMEOUT, Endpoint


class _Forwarded(http.client.HTTPConnection):
    """An HTTP connection whose socket is a fresh port-forward to the pod, never a local TCP connect."""

    def __init__(self, open_socket: Callable[[], socket.socket], timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._open_socket = open_socket

    def connect(self) -> None:
        self.sock = self._open_socket()
        self.sock.settimeout(self.timeout)


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
        return forward.socket(self.port)

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, timeout: float = REQUEST_TIMEOUT
    ) -> tuple[int, Any]:
        connection = _Forwarded(self._socket, timeout)
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
