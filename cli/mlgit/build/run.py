"""`mlgit serve --docker`: run a model image locally the way the Kubernetes Deployment runs it.

Same constraints as the pod: uid 10001, read-only root filesystem with a tmpfs /tmp, no capabilities,
no privilege escalation, the drain time from mlgit.yaml. Stopping sends SIGTERM and waits for the
runtime to drain, as the kubelet does.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from mlgit.config.auth import API_KEYS_DIR
from mlgit.config.schema import MlgitConfig
from mlgit.console import err, out
from mlgit.errors import MlgitError

RUN_AS = "10001:10001"  # the Deployment's runAsUser/runAsGroup
READY_PATH = "/v2/health/ready"
READY_TIMEOUT_S = 180.0
STOP_GRACE_S = 5  # beyond the drain time, as terminationGracePeriodSeconds is
LOG_TAIL_LINES = 30
# Settings the container decides itself: its listeners and repository, and no TLS (the readiness wait and
# the printed URL speak plain HTTP).
_NOT_PASSED = {
    "MLGIT_SERVING_HOST",
    "MLGIT_SERVING_PORT",
    "MLGIT_SERVING_GRPC_PORT",
    "MLGIT_SERVING_MODEL_REPOSITORY",
    "MLGIT_SERVING_TLS_CERT_FILE",
    "MLGIT_SERVING_TLS_KEY_FILE",
}


@dataclass(frozen=True)
class Published:
    """Where the container's port is published on this machine."""

    host: str
    port: int

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"


def container_settings(config: MlgitConfig, environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, Any]]:
    """The runtime's environment and bind mounts: the MLGIT_SERVING_* variables of this shell (auth, docs,
    logging), as the in-process `mlgit serve` would see them, but for what the container fixes; an API key
    directory is mounted read-only where the Deployment mounts the Secret. mlgit.yaml's ports, workers and drain
    time win."""
    environment = {k: v for k, v in environ.items() if k.startswith("MLGIT_SERVING_") and k not in _NOT_PASSED}
    volumes: dict[str, Any] = {}
    key_dir = environment.pop("MLGIT_SERVING_API_KEYS_DIR", "")
    if key_dir:
        path = Path(key_dir).resolve()
        if not path.is_dir():
            raise MlgitError(f"MLGIT_SERVING_API_KEYS_DIR={key_dir} is not a directory", "it holds one key per file")
        volumes[str(path)] = {"bind": API_KEYS_DIR, "mode": "ro"}
        environment["MLGIT_SERVING_API_KEYS_DIR"] = API_KEYS_DIR
    environment["MLGIT_SERVING_PORT"] = str(config.serving.port)
    if config.serving.grpc_port is not None:
        environment["MLGIT_SERVING_GRPC_PORT"] = str(config.serving.grpc_port)
    if config.serving.workers is not None:
        environment["MLGIT_SERVING_WORKERS"] = str(config.serving.workers)
    environment["MLGIT_SERVING_DRAIN_SECONDS"] = str(config.serving.drain_seconds)
    return environment, volumes


def published_ports(config: MlgitConfig, published: Published) -> dict[str, tuple[str, int]]:
    """The HTTP port where `published` says; gRPC (serving.grpc_port) at the same number on the same address."""
    ports = {f"{config.serving.port}/tcp": (published.host, published.port)}
    if config.serving.grpc_port is not None:
        ports[f"{config.serving.grpc_port}/tcp"] = (published.host, config.serving.grpc_port)
    return ports


def start_container(client: Any, image: str, config: MlgitConfig, published: Published) -> Any:
    """Start `image` detached, under the pod's security constraints; the caller stops and removes it."""
    import docker.errors
    from docker.types import DeviceRequest

    serving = config.serving
    gpus = [DeviceRequest(count=serving.gpus or 1, capabilities=[["gpu"]])] if serving.device == "gpu" else None
    environment, volumes = container_settings(config, os.environ)
    try:
        return client.containers.run(
            image,
            detach=True,
            user=RUN_AS,
            read_only=True,
            tmpfs={"/tmp": "rw,nosuid,nodev,mode=1777"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            environment=environment,
            volumes=volumes,
            ports=published_ports(config, published),
            device_requests=gpus,
            labels={"org.mlgit.model": config.name},
        )
    except docker.errors.ImageNotFound:
        raise MlgitError(f"image {image} is not in the Docker engine", "build it first: `mlgit build`") from None
    except docker.errors.APIError as exc:
        hint = "is the port taken? choose another with --port"
        if serving.device == "gpu":
            hint += "; a GPU model needs the NVIDIA container toolkit on the engine"
        raise MlgitError(f"docker could not start {image}: {exc.explanation or exc}", hint) from None


def logs_tail(container: Any) -> list[str]:
    try:
        return container.logs(tail=LOG_TAIL_LINES).decode("utf-8", "replace").splitlines()
    except Exception:  # the container may already be gone; the logs are only a courtesy
        return []


def wait_ready(container: Any, url: str, timeout: float = READY_TIMEOUT_S) -> float:
    """Poll the readiness endpoint until 200; seconds it took. Fails early when the container exits."""
    start = time.monotonic()
    with httpx.Client(trust_env=False, timeout=2) as http:
        while True:
            try:
                if http.get(url + READY_PATH).status_code == 200:
                    return time.monotonic() - start
            except httpx.TransportError:
                pass
            container.reload()
            if container.status in ("exited", "dead"):
                code = container.attrs["State"]["ExitCode"]
                raise MlgitError(
                    f"the container exited with code {code} before it was ready",
                    "its last log lines are above the hint",
                    problems=logs_tail(container),
                )
            if time.monotonic() - start > timeout:
                raise MlgitError(
                    f"{url}{READY_PATH} was not ready within {timeout:.0f} s", problems=logs_tail(container)
                )
            time.sleep(0.1)


def stop_container(container: Any, drain_seconds: int) -> int:
    """SIGTERM, wait up to the drain time (+ grace) for the runtime to exit, then its exit code."""
    container.stop(timeout=drain_seconds + STOP_GRACE_S)  # SIGKILL only after that, like the kubelet
    return int(container.wait()["StatusCode"])


def _follow_logs(container: Any) -> None:
    try:
        for chunk in container.logs(stream=True, follow=True):
            err.out(chunk.decode("utf-8", "replace").rstrip("\n"), highlight=False)
    except Exception:  # the stream ends with the container; nothing to report here
        return


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve_container(client: Any, image: str, config: MlgitConfig, published: Published) -> None:
    """Run until Ctrl-C or SIGTERM, then stop the container gracefully and remove it."""
    container = start_container(client, image, config, published)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` of mlgit drains the container too
    try:
        threading.Thread(target=_follow_logs, args=(container,), daemon=True).start()
        seconds = wait_ready(container, published.url)
        err.print(f"{config.name} is ready after {seconds:.1f} s (container {container.short_id}); Ctrl-C stops it")
        out.print(published.url)
        try:
            code = int(container.wait()["StatusCode"])
        except KeyboardInterrupt:
            err.print(f"stopping: SIGTERM, draining for up to {config.serving.drain_seconds} s")
            start = time.monotonic()
            code = stop_container(container, config.serving.drain_seconds)
            err.print(f"stopped after {time.monotonic() - start:.1f} s, exit code {code}")
            if code == 0:
                return
            raise MlgitError(f"the runtime exited with code {code} on SIGTERM", problems=logs_tail(container)) from None
        raise MlgitError(f"the container stopped on its own (exit code {code})", problems=logs_tail(container))
    finally:
        signal.signal(signal.SIGTERM, previous)
        container.remove(force=True)
