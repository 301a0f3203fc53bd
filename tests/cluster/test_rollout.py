"""Rollouts on a real control plane: the Deployment controller's progress deadline, the automatic
rollback to the previous ReplicaSet, `mlgit rollback`, and `mlgit status` from real conditions.

kwok never makes a pod Ready whose image contains `never-ready` (tests/cluster/kwok/kwok.yaml): such a
rollout makes no progress, and the controller marks it ProgressDeadlineExceeded after
serving.progress_deadline_seconds, which these tests shorten to a few seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from mlgit.manifests.pins import write_pin
from tests.cluster.conftest import DIGEST2, flat, image, update_config
from tests.cluster.kube import Kube, containers

SKIP_SMOKE = "--skip-smoke"
DIGEST3 = "sha256:" + "3" * 64


@pytest.fixture
def short_deadline(model_repo: Path) -> None:
    update_config(model_repo, {"serving": {"progress_deadline_seconds": 4}})
    assert "progressDeadlineSeconds: 4" in (model_repo / "deploy" / "base" / "deployment.yaml").read_text()


def _revision(kube: Kube, name: str, namespace: str) -> str:
    deployment = kube.get("deployment", name, namespace)
    assert deployment is not None
    return str(deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"])


def test_a_rollout_past_its_progress_deadline_is_diagnosed_and_rolled_back(
    name: str, namespace: str, short_deadline: None, mlgit: Callable[..., Result], kube: Kube
) -> None:
    assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
    # What the broken pods "print": kwok serves this file, in the container runtime's log format, as every
    # pod's log through the API server's pods/log.
    lines = ("loading model.onnx", "error: CUDA driver version is too old")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    Path(os.environ["MLGIT_TEST_POD_LOG"]).write_text("".join(f"{stamp} stdout F {line}\n" for line in lines))
    broken = image(name, DIGEST2, marker="-never-ready")
    result = mlgit("deploy", "--env", "dev", "--image", broken, SKIP_SMOKE)
    assert result.exit_code == 1
    err = flat(result.stderr)
    assert f"rollout of {name} exceeded its progress deadline" in err
    assert "ReplicaSet" in err and "has timed out progressing" in err  # the controller's own condition message
    assert "log | error: CUDA driver version is too old" in err  # through the API server's pods/log
    assert f"rolled back deployment/{name} to revision 1" in err
    assert "rolled back to revision 1" in err and "Traceback" not in result.output
    deployment = kube.get("deployment", name, namespace)
    assert deployment is not None and containers(deployment) == {"server": image(name)}
    assert _revision(kube, name, namespace) == "3"  # the rollback is a new revision, as with kubectl
    assert deployment["status"]["readyReplicas"] == 1
    pods = kube.list("pods", namespace, f"app.kubernetes.io/name={name}")
    assert [p["spec"]["containers"][0]["image"] for p in pods if not p["metadata"].get("deletionTimestamp")] == [
        image(name)
    ]


def test_no_rollback_leaves_the_failed_rollout_and_status_reports_it(
    name: str, namespace: str, short_deadline: None, mlgit: Callable[..., Result], kube: Kube
) -> None:
    assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
    broken = image(name, DIGEST2, marker="-never-ready")
    result = mlgit("deploy", "--env", "dev", "--image", broken, SKIP_SMOKE, "--no-rollback")
    assert result.exit_code == 1
    assert "mlgit rollback --env dev" in flat(result.stderr)
    deployment = kube.get("deployment", name, namespace)
    assert deployment is not None and containers(deployment) == {"server": broken}
    # The old pod still serves: maxUnavailable 0 kept it while the new one never became ready.
    assert deployment["status"]["readyReplicas"] == 1
    status = mlgit("status", "--env", "dev", "--json")
    (record,) = json.loads(status.stdout)
    assert record["rollout"].startswith(f"failed: rollout of {name} exceeded its progress deadline")
    assert record["running_digest"] == DIGEST2


def test_rollback_to_the_previous_and_to_a_named_revision(
    name: str, namespace: str, mlgit: Callable[..., Result], kube: Kube
) -> None:
    for digest in (None, DIGEST2, DIGEST3):
        ref = image(name) if digest is None else image(name, digest)
        assert mlgit("deploy", "--env", "dev", "--image", ref, SKIP_SMOKE).exit_code == 0
    previous = mlgit("rollback", "--env", "dev")
    assert previous.exit_code == 0, previous.output
    assert "rolled back dev to revision 2" in flat(previous.stdout)
    deployment = kube.get("deployment", name, namespace)
    assert deployment is not None and containers(deployment) == {"server": image(name, DIGEST2)}
    assert "pod-template-hash" not in deployment["spec"]["template"]["metadata"]["labels"]
    first = mlgit("rollback", "--env", "dev", "--revision", "1")
    assert first.exit_code == 0, first.output
    deployment = kube.get("deployment", name, namespace)
    assert deployment is not None and containers(deployment) == {"server": image(name)}
    assert _revision(kube, name, namespace) == "5"
    missing = mlgit("rollback", "--env", "dev", "--revision", "9")
    assert missing.exit_code == 1
    assert "has no revision 9" in flat(missing.stderr)
    assert "revisions on the cluster: 3, 4, 5" in flat(missing.stderr)


def test_rollback_of_an_environment_never_deployed(name: str, namespace: str, mlgit: Callable[..., Result]) -> None:
    result = mlgit("rollback", "--env", "dev")
    assert result.exit_code == 1
    assert f"{name} is not deployed in dev" in flat(result.stderr)


def test_status_compares_the_pinned_digest_with_what_runs(
    name: str, namespace: str, model_repo: Path, mlgit: Callable[..., Result]
) -> None:
    assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
    write_pin(model_repo, "dev", image(name, DIGEST2))
    result = mlgit("status", "--json")
    assert result.exit_code == 0, result.output
    records = {r["environment"]: r for r in json.loads(result.stdout)}
    dev = records["dev"]
    assert dev["desired_digest"] == DIGEST2 and dev["running_digest"] == image(name).split("@")[1]
    assert dev["in_sync"] is False
    assert dev["replicas"] == {"ready": 1, "desired": 1}
    assert dev["url"] == f"https://{name}.dev.models.example.com"  # as the pipeline's environment:url
    assert dev["rollout"] == "complete" and dev["revision"] == "1"
    assert dev["certificate"] is None  # dev's Ingress asks cert-manager's ingress-shim: no Certificate of ours
    assert records["prod"] == {**records["prod"], "deployed": False, "namespace": f"{name}-prod"}
    table = mlgit("status", "--env", "dev")
    assert table.exit_code == 0 and "complete" in table.stdout
    # status reports what runs: a host changed in mlgit.yaml but not deployed is not the URL served.
    moved = {"dev": {"host": f"{name}-moved.models.example.com"}, "staging": {}, "prod": {}}
    update_config(model_repo, {"environments": moved})
    (again,) = json.loads(mlgit("status", "--env", "dev", "--json").stdout)
    assert again["url"] == f"https://{name}.dev.models.example.com"
