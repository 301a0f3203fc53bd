"""`mlgit batch submit` and `status` on the real control plane: the API server accepts the Indexed Job, the
Job controller makes one pod per shard, and kwok's job-pod-complete / job-pod-fail stages end them (an image
containing `batch-fails` fails with exit code 1 and a termination message), so tracking sees both outcomes.
Fake nodes run no container: the runner itself is tested locally and in a container (tests/batch)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from tests.cluster.conftest import flat, image, update_config
from tests.cluster.kube import Kube

SECRET = "s3-creds"
S3 = {"batch": {"storage": {"s3": {"endpoint": "http://s3.example.com:9000", "secret": SECRET}}}}


@pytest.fixture
def s3_repo(model_repo: Path, namespace: str) -> Path:
    update_config(model_repo, S3)
    return model_repo


def _s3_secret(kube: Kube, namespace: str) -> None:
    data = {k: base64.b64encode(b"test").decode() for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    kube.apply(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET, "namespace": namespace}, "data": data}
    )


def _run_id(result: Result) -> str:
    return flat(result.stdout).split("batch run ", 1)[1].split()[0]


def test_a_run_makes_one_pod_per_shard_and_succeeds(
    name: str, namespace: str, s3_repo: Path, mlgit: Callable[..., Result], kube: Kube
) -> None:
    _s3_secret(kube, namespace)
    result = mlgit(
        "batch", "submit", "--env", "dev", "--input", "s3://in/x", "--output", "s3://out/x",
        "--completions", "3", "--parallelism", "2", "--image", image(name), "--wait",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run = _run_id(result)
    assert f"batch run {run} succeeded: 3/3 shards done, 0 failed" in flat(result.stdout)
    job = kube.get("job", f"{name}-batch-{run}", namespace)
    assert job is not None and job["spec"]["completionMode"] == "Indexed"
    pods = kube.list("pod", namespace, f"mlgit.dev/batch={run}")
    shards = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods}
    assert shards == {"0", "1", "2"}
    assert {p["status"]["phase"] for p in pods} == {"Succeeded"}
    policy = kube.get("networkpolicy", f"{name}-batch-{run}", namespace)
    assert policy is not None and policy["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]

    listed = mlgit("batch", "status", "--env", "dev", "--json")
    assert listed.exit_code == 0, listed.output
    assert '"run": "' + run + '"' in listed.stdout and '"state": "succeeded"' in listed.stdout


def test_a_failing_shard_makes_wait_exit_1_with_its_reason(
    name: str, namespace: str, s3_repo: Path, mlgit: Callable[..., Result], kube: Kube
) -> None:
    _s3_secret(kube, namespace)
    result = mlgit(
        "batch", "submit", "--env", "dev", "--input", "s3://in/x", "--output", "s3://out/x",
        "--completions", "2", "--image", image(name, marker="-batch-fails"), "--wait",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    errors = flat(result.stderr)
    assert "failed (FailedIndexes" in errors and "failed shard(s): 0, 1" in errors
    assert "exit code 1 (Error): batch: 1 of 3 files failed: broken.npz: not a valid .npz file" in errors
    # The runner exits 1 for bad files: the pod failure policy fails the shard without a retry.
    run = errors.split("batch run ", 1)[1].split()[0]
    assert len(kube.list("pod", namespace, f"mlgit.dev/batch={run}")) == 2

    shown = mlgit("batch", "status", "--env", "dev", "--run", run)
    assert shown.exit_code == 0, shown.output
    assert "failed" in shown.stdout and "broken.npz" in flat(shown.stdout)


def test_a_missing_secret_is_refused_before_anything_is_applied(
    name: str, namespace: str, s3_repo: Path, mlgit: Callable[..., Result], kube: Kube
) -> None:
    result = mlgit(
        "batch", "submit", "--env", "dev", "--input", "s3://in/x", "--output", "s3://out/x", "--image", image(name)
    )
    assert result.exit_code == 1
    errors = flat(result.stderr)
    assert f"Secret {SECRET} (batch.storage.s3.secret) does not exist in namespace {namespace}" in errors
    assert f"kubectl create secret generic {SECRET} --namespace {namespace}" in errors
    assert kube.list("job", namespace) == []


def test_a_missing_claim_is_refused_before_anything_is_applied(
    name: str, namespace: str, model_repo: Path, mlgit: Callable[..., Result], kube: Kube
) -> None:
    update_config(model_repo, {"batch": {"storage": {"pvc": {"claim": "scans"}}}})
    result = mlgit(
        "batch", "submit", "--env", "dev", "--input", "/data/in", "--output", "/data/out", "--image", image(name)
    )
    assert result.exit_code == 1
    assert f"PersistentVolumeClaim scans (batch.storage.pvc.claim) does not exist in namespace {namespace}" in flat(
        result.stderr
    )
    assert kube.list("job", namespace) == []


def test_destroy_deletes_the_environments_batch_jobs(
    name: str, namespace: str, s3_repo: Path, mlgit: Callable[..., Result], kube: Kube
) -> None:
    _s3_secret(kube, namespace)
    result = mlgit(
        "batch", "submit", "--env", "dev", "--input", "s3://in/x", "--output", "s3://out/x", "--image", image(name),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    job = f"{name}-batch-{_run_id(result)}"
    assert kube.get("job", job, namespace) is not None

    destroyed = mlgit("destroy", "--env", "dev", "--yes")
    assert destroyed.exit_code == 0, destroyed.output
    assert kube.get("job", job, namespace) is None
    assert kube.get("networkpolicy", job, namespace) is None  # owned by the Job, collected with it
