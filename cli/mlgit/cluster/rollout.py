"""Waiting for a Deployment's rollout, the way `kubectl rollout status` judges one, with live progress."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from mlgit.cluster.client import Cluster
from mlgit.console import err
from mlgit.errors import MlgitError

POLL_SECONDS = 0.5


class RolloutFailed(MlgitError):
    """The rollout hit its progress deadline or our timeout (deploy diagnoses and rolls back)."""


def assess(deployment: dict[str, Any]) -> tuple[bool, str]:
    """(done, what is happening) from the Deployment's spec and status; raises RolloutFailed on a deadline."""
    meta, spec, status = deployment["metadata"], deployment.get("spec", {}), deployment.get("status") or {}
    if status.get("observedGeneration", 0) < meta.get("generation", 1):
        return False, "waiting for the Deployment controller to see the new spec"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            message = condition.get("message", "")
            raise RolloutFailed(f"rollout of {meta['name']} exceeded its progress deadline: {message}")
    desired = spec.get("replicas", 1)
    updated, total = status.get("updatedReplicas", 0), status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    text = f"{updated}/{desired} updated, {available}/{desired} available"
    if updated < desired:
        return False, text
    if total > updated:
        return False, f"{text}, {total - updated} old replica(s) terminating"
    if available < updated:
        return False, text
    return True, text


@contextlib.contextmanager
def progress(title: str) -> Iterator[Callable[[str], None]]:
    """A live status line on stderr; in CI logs (no terminal), one line per change instead."""
    if err.is_terminal:
        with err.status(title) as status:
            yield lambda text: status.update(f"{title}: {text}")
        return
    last: list[str] = []

    def show(text: str) -> None:
        if last[-1:] != [text]:
            err.print(f"{title}: {text}")
            last.append(text)

    yield show


def wait_for_rollout(cluster: Cluster, namespace: str, name: str, timeout: float) -> str:
    """Poll until the rollout completes; RolloutFailed on the progress deadline or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    with progress(f"rollout deployment/{name}") as show:
        while True:
            deployment = cluster.get("apps/v1", "Deployment", name, namespace)
            if deployment is None:
                raise RolloutFailed(f"deployment {name} disappeared from namespace {namespace} during the rollout")
            done, text = assess(deployment)
            show(text)
            if done:
                return text
            if time.monotonic() > deadline:
                raise RolloutFailed(f"rollout of {name} did not finish within {timeout:g}s ({text})")
            time.sleep(POLL_SECONDS)
