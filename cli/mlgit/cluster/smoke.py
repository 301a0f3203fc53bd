"""The smoke check after `mlgit deploy`: the check of `mlgit.smoke`, sent through a port-forward to a pod.

The kubernetes client opens the port-forward (the API server and kubelet tunnel it into the pod's own
network namespace). Unlike the API server's service proxy, that path is not blocked by the
NetworkPolicy mlgit renders, which admits only the ingress controller's namespaces; it needs RBAC
`create` on `pods/portforward`. `deploy --skip-smoke` (or MLGIT_DEPLOY_SKIP_SMOKE=1) leaves the check
out. `mlgit smoke --url`, which needs no cluster, runs the same check over HTTP(S) without this module.

Authentication follows the live Deployment's server container: mode api-key presents the first key of the
Secret it mounts (read through the API, like `kubectl get secret`: RBAC `get` on secrets); mode oidc
presents MLGIT_SMOKE_TOKEN, and without one the check waits for readiness and sends no sample.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import client
from kubernetes.stream import portforward

from mlgit.cluster.client import Cluster, api_errors
from mlgit.cluster.objects import pod_selector
from mlgit.cluster.secrets import read_api_key
from mlgit.errors import MlgitError
from mlgit.smoke import REQUEST_TIMEOUT, TOKEN_ENV, Endpoint, bearer, token_headers

API_KEYS_VOLUME = "api-keys"  # the volume deploy/overlays/<env>/auth.yaml mounts the api-key Secret as


def _unverified_tls() -> ssl.SSLContext:
    # A pod that serves HTTPS itself (OpenShift re-encrypt routes) has a certificate from the cluster's
    # service CA, issued for the Service's name, which this machine neither trusts nor dials: the tunnel
    # already runs through the authenticated API server into that very pod, so TLS here only has to speak.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _Forwarded(http.client.HTTPConnection):
    """An HTTP(S) connection whose socket is a fresh port-forward to the pod, never a local TCP connect."""

    def __init__(self, open_socket: Callable[[], socket.socket], timeout: float, tls: bool = False) -> None:
        super().__init__("localhost", timeout=timeout)
        self._open_socket = open_socket
        self._tls = tls

    def connect(self) -> None:
        sock = self._open_socket()
        sock.settimeout(self.timeout)
        self.sock = _unverified_tls().wrap_socket(sock) if self._tls else sock


class PortForwardEndpoint:
    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        pod: str,
        port: int,
        headers: dict[str, str] | None = None,
        unauthenticated: str | None = None,
        tls: bool = False,
    ) -> None:
        self.cluster, self.namespace, self.pod, self.port = cluster, namespace, pod, port
        self.headers = headers or {}
        self.unauthenticated = unauthenticated
        self.tls = tls

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
        connection = _Forwarded(self._socket, timeout, self.tls)
        try:
            payload = None if body is None else json.dumps(body)
            headers = {"Content-Type": "application/json", **self.headers}
            connection.request(method, path, body=payload, headers=headers)
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


def _server_env(deployment: dict[str, Any]) -> dict[str, Any]:
    pod = deployment["spec"]["template"]["spec"]
    server = next((c for c in pod["containers"] if c.get("name") == "server"), pod["containers"][0])
    return {e.get("name"): e.get("value") for e in server.get("env") or []}


def _credentials(
    cluster: Cluster, deployment: dict[str, Any], env: dict[str, Any]
) -> tuple[dict[str, str], str | None]:
    """(headers, why there are none) for the server the Deployment runs, by the auth mode its `env` sets."""
    pod = deployment["spec"]["template"]["spec"]
    mode = env.get("MLGIT_SERVING_AUTH_MODE") or "none"
    if mode == "api-key":
        volume = next((v for v in pod.get("volumes") or [] if v.get("name") == API_KEYS_VOLUME), None)
        secret = ((volume or {}).get("secret") or {}).get("secretName")
        if not secret:
            raise MlgitError(
                f"smoke check: deployment {deployment['metadata']['name']} runs auth mode api-key "
                f"without the {API_KEYS_VOLUME} Secret volume mlgit renders",
                "run `mlgit render` and deploy again, or skip the smoke check with --skip-smoke",
            )
        _, key = read_api_key(cluster, deployment["metadata"]["namespace"], secret)
        return bearer(key), None
    if mode == "oidc":
        headers = token_headers()
        why = None if headers else f"auth mode oidc and no {TOKEN_ENV} (a token from the issuer) to call it with"
        return headers, why
    return {}, None


@contextlib.contextmanager
def open_endpoint(cluster: Cluster, deployment: dict[str, Any]) -> Iterator[Endpoint]:
    """An endpoint on the newest ready pod of the Deployment, at its first container's first port, over
    HTTPS when the server serves it (MLGIT_SERVING_TLS_CERT_FILE set)."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    port = int(((containers[0].get("ports") or [{}])[0]).get("containerPort", 8080))
    env = _server_env(deployment)
    headers, unauthenticated = _credentials(cluster, deployment, env)
    pod = _ready_pod(cluster, deployment)
    tls = bool(env.get("MLGIT_SERVING_TLS_CERT_FILE"))
    yield PortForwardEndpoint(cluster, deployment["metadata"]["namespace"], pod, port, headers, unauthenticated, tls)
