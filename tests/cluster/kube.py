"""The test side of the cluster tests: the real kubectl against the control plane, and where it runs.

Assertions read the cluster through kubectl (not through mlgit's own client), so that a defect in
mlgit's cluster code cannot hide itself. See tests/cluster/conftest.py for the fixtures.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Kube:
    """kubectl with one kubeconfig (the cluster's admin, or a test's restricted identity)."""

    kubectl: str
    kubeconfig: Path

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [self.kubectl, "--kubeconfig", str(self.kubeconfig), *args]
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        """The live object, or None when it does not exist."""
        where = ["-n", namespace] if namespace else []
        result = self.run("get", kind, name, *where, "-o", "json", "--show-managed-fields", "--ignore-not-found")
        return json.loads(result.stdout) if result.stdout.strip() else None

    def list(self, kind: str, namespace: str, selector: str | None = None) -> list[Obj]:
        labels = ["-l", selector] if selector else []
        return json.loads(self.run("get", kind, "-n", namespace, *labels, "-o", "json").stdout)["items"]

    def apply(self, obj: Obj, manager: str = "test-author", *extra: str) -> None:
        """Server-side apply of one object by another field manager than mlgit."""
        self.run("apply", "--server-side", "--field-manager", manager, *extra, "-f", "-", stdin=json.dumps(obj))

    def create_namespace(self, name: str) -> None:
        self.run("create", "namespace", name)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll `check()` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.25)


def containers(deployment: Obj) -> dict[str, str]:
    """Container name -> image of a Deployment's pod template."""
    return {c["name"]: c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}


def managers(obj: Obj) -> set[str]:
    return {entry["manager"] for entry in obj["metadata"].get("managedFields") or []}


def kwok_pod_address() -> tuple[str, int] | None:
    """Where this control plane's kwok forwards every pod port (tests/cluster/control-plane.sh), if it does."""
    address = os.environ.get("MLGIT_TEST_POD_ADDRESS")
    if not address:
        return None
    host, _, port = address.rpartition(":")
    return host, int(port)
