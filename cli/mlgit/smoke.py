"""The smoke check: the model reports ready, and the sample request gets the expected answer.

It talks to an `Endpoint`. `mlgit smoke --url` (the pipeline's image-smoke job, on the image it built,
started as the job's service container) uses `HttpEndpoint`, over HTTP or HTTPS; `mlgit deploy` uses
the port-forward endpoint of `mlgit.cluster.smoke`. This module needs no cluster and imports no
kubernetes client.

One deadline bounds the whole check: every request waits at most for the time left before it (at
least MIN_REQUEST_TIMEOUT, at most REQUEST_TIMEOUT), so a server that takes connections and never
answers fails the check at its timeout, not a minute later.

Authentication: an endpoint carries the `Authorization` header the server wants (an API key, or an OIDC
token from MLGIT_SMOKE_TOKEN). An endpoint that has none for a server that needs one says why in
`unauthenticated`: the check then waits for /v2/health/ready (always open) and sends no sample.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from mlgit.config.load import Project
from mlgit.errors import MlgitError
from mlgit.samples.tensors import compare_outputs, from_oip

READY_TIMEOUT = 60.0  # deploy's check, on a pod whose rollout just completed
REQUEST_TIMEOUT = 60.0  # the most one request waits, however far the deadline is
MIN_REQUEST_TIMEOUT = 1.0  # the least: a last poll just before the deadline still gets a real chance
TOKEN_ENV = "MLGIT_SMOKE_TOKEN"  # a bearer token (OIDC) for servers whose auth mode is oidc


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_headers() -> dict[str, str]:
    """The Authorization header from MLGIT_SMOKE_TOKEN, or none when it is unset or empty."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    return bearer(token) if token else {}


class Endpoint(Protocol):
    """Somewhere an OIP v2 request can be sent: returns the HTTP status and the decoded JSON body.

    `timeout` bounds the request, in seconds (connecting, sending and each wait for the answer).
    `unauthenticated`: why the endpoint cannot authenticate to a server that requires it; None when it can
    (or need not)."""

    unauthenticated: str | None

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, timeout: float = REQUEST_TIMEOUT
    ) -> tuple[int, Any]: ...


class HttpEndpoint:
    """An OIP v2 server at an http:// or https:// URL. A refused, dropped or unanswered connection reads as
    status 0, so the readiness poll keeps waiting while the service container is still starting.

    https:// certificates are verified against httpx's CA bundle (certifi's, Mozilla's list); no other CA
    can be given, so a server with a private CA fails the check with CERTIFICATE_VERIFY_FAILED."""

    unauthenticated: str | None = None

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        # No proxy: the service container is on the runner's own network, never behind HTTP(S)_PROXY.
        self.client = httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT, trust_env=False, headers=headers)

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, timeout: float = REQUEST_TIMEOUT
    ) -> tuple[int, Any]:
        try:
            response = self.client.request(method, path, json=body, timeout=timeout)
        except httpx.TransportError as exc:
            return 0, f"{type(exc).__name__}: {exc}"
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True)
class SmokeResult:
    message: str
    latency_ms: float | None  # the sample request's round trip, recorded as promotion evidence; None: not sent

    def __str__(self) -> str:
        return self.message if self.latency_ms is None else f"{self.message} ({self.latency_ms:.1f} ms)"


def _time_left(deadline: float) -> float:
    """The timeout of the next request: the time left before `deadline`, within the bounds above."""
    return min(REQUEST_TIMEOUT, max(MIN_REQUEST_TIMEOUT, deadline - time.monotonic()))


def smoke_check(endpoint: Endpoint, project: Project, timeout: float = READY_TIMEOUT) -> SmokeResult:
    """Wait for the model to be ready, send the sample, compare with the expected outputs; all within `timeout`."""
    name, sample = project.config.name, project.sample
    deadline = time.monotonic() + timeout
    # Without credentials only the open health endpoint can answer.
    ready = "/v2/health/ready" if endpoint.unauthenticated else f"/v2/models/{name}/ready"
    while True:
        status, body = endpoint.request("GET", ready, timeout=_time_left(deadline))
        if status == 200:
            break
        if status in (401, 403):
            raise MlgitError(
                f"smoke check: the server requires authentication and refused the check (HTTP {status}: {body})",
                f"the server requires authentication: set {TOKEN_ENV} to a bearer token it accepts "
                "(mlgit deploy presents a key of the api-key Secret by itself)",
            )
        left = deadline - time.monotonic()
        if left <= 0:
            raise MlgitError(f"smoke check: model {name} not ready after {timeout:g}s (HTTP {status}: {body})")
        time.sleep(min(1.0, left))
    if endpoint.unauthenticated:
        return SmokeResult(f"server is ready; the sample was not sent: {endpoint.unauthenticated}", None)
    started = time.perf_counter()
    status, body = endpoint.request(
        "POST", f"/v2/models/{name}/infer", {"inputs": sample["inputs"]}, timeout=_time_left(deadline)
    )
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
    checked = _check_versions(endpoint, project, deadline)
    also = f"; version {', '.join(checked)} answered its sample too" if checked else ""
    return SmokeResult(f"model {name} is ready and answered the sample as expected{also}", latency_ms)


def _check_versions(endpoint: Endpoint, project: Project, deadline: float) -> list[str]:
    """Send each of model.versions its own sample, where the server serves that version (an environment may
    route fewer: 404); the versions checked."""
    name, checked = project.config.name, []
    for extra in project.config.model.versions:
        sample = project.version_samples.get(extra.version)
        if extra.sample is None or sample is None:
            continue
        path = f"/v2/models/{name}/versions/{extra.version}"
        status, body = endpoint.request("GET", f"{path}/ready", timeout=_time_left(deadline))
        if status == 404:
            continue  # not among this environment's versions
        if status == 200:
            status, body = endpoint.request(
                "POST", f"{path}/infer", {"inputs": sample["inputs"]}, timeout=_time_left(deadline)
            )
        if status != 200 or not isinstance(body, dict):
            raise MlgitError(f"smoke check: version {extra.version}'s sample failed with HTTP {status}: {body}")
        actual = {t["name"]: from_oip(t) for t in body.get("outputs") or []}
        problems = compare_outputs(sample.get("expected_outputs") or {}, actual, extra.sample.rtol, extra.sample.atol)
        if problems:
            raise MlgitError(
                f"smoke check: version {extra.version} of {name} answered its sample differently than expected",
                f"check model.versions' {extra.path} against {extra.sample.path}",
                problems=problems,
            )
        checked.append(extra.version)
    return checked


def smoke_url(project: Project, url: str, timeout: float) -> SmokeResult:
    """The smoke check against the server at `url`: in the pipeline, the built image as a service container."""
    endpoint = HttpEndpoint(url, token_headers())
    try:
        return smoke_check(endpoint, project, timeout=timeout)
    finally:
        endpoint.close()
