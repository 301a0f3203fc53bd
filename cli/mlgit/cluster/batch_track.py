"""Following batch runs: a Job's shards (succeeded, failed, running), why a shard's pods failed, and the list
of an environment's runs.

The Job controller records finished shards in status.completedIndexes and status.failedIndexes (with
backoffLimitPerIndex) and ends the Job with a Complete or Failed condition; the pods say why they failed:
the container's exit code and reason, and its termination message, which holds the runner's last log lines
(terminationMessagePolicy FallbackToLogsOnError). Where that is empty the pod's log is read, when the
credentials may (RBAC pods/log); a missing permission only loses those lines.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from mlgit.cluster.batch_job import BATCH_LABEL
from mlgit.cluster.client import Cluster
from mlgit.cluster.rollout import progress
from mlgit.console import err
from mlgit.errors import MlgitError
from mlgit.targets import MODEL_LABEL, Target

JOB = ("batch/v1", "Job")
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
POLL_SECONDS = 1.0
LOG_LINES = 5
# Container waits that no retry fixes: the shard would wait until the Job's deadline, so they are shown.
STUCK_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError")


def indexes(text: str | None) -> set[int]:
    """The Job controller's interval list ("0-2,5") as a set of indexes."""
    found: set[int] = set()
    for part in filter(None, (text or "").split(",")):
        first, _, last = part.partition("-")
        found.update(range(int(first), int(last or first) + 1))
    return found


@dataclass
class RunState:
    """What a batch Job's status says."""

    name: str
    run_id: str
    completions: int
    succeeded: set[int]
    failed: set[int]
    active: int
    outcome: str | None
    """succeeded, failed, or None while it runs."""
    reason: str = ""
    """The Failed condition's reason and message (FailedIndexes, DeadlineExceeded, ...)."""
    annotations: dict[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def summary(self) -> str:
        return f"{len(self.succeeded)}/{self.completions} shards done, {len(self.failed)} failed, {self.active} running"


def state(job: dict[str, Any]) -> RunState:
    meta, spec, status = job["metadata"], job.get("spec") or {}, job.get("status") or {}
    outcome, reason = None, ""
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            outcome = "succeeded"
        elif condition.get("type") == "Failed":
            outcome = "failed"
            reason = ": ".join(filter(None, [condition.get("reason"), condition.get("message")]))
    return RunState(
        name=meta["name"],
        run_id=(meta.get("labels") or {}).get(BATCH_LABEL, ""),
        completions=spec.get("completions") or 1,
        succeeded=indexes(status.get("completedIndexes")),
        failed=indexes(status.get("failedIndexes")),
        active=status.get("active") or 0,
        outcome=outcome,
        reason=reason,
        annotations=meta.get("annotations") or {},
        created=str(meta.get("creationTimestamp") or ""),
    )


def _log_tail(cluster: Cluster, pod: dict[str, Any]) -> str:
    """The last lines of the pod's log, or "" when it cannot be read (no RBAC pods/log, log gone)."""
    meta = pod["metadata"]
    try:
        text = client.CoreV1Api(cluster.api_client).read_namespaced_pod_log(
            meta["name"], meta["namespace"], tail_lines=LOG_LINES, _request_timeout=(10, 30)
        )
    except (client.ApiException, OSError):
        return ""
    return str(text or "").strip()


def pod_problems(cluster: Cluster, pods: list[dict[str, Any]], read_logs: bool = True) -> list[str]:
    """Per failed or stuck pod: its shard, and why, in a line (with the runner's last lines when known)."""
    lines = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        meta, status = pod["metadata"], pod.get("status") or {}
        shard = (meta.get("annotations") or {}).get(INDEX_ANNOTATION, "?")
        where = f"shard {shard} (pod {meta['name']})"
        for container in status.get("containerStatuses") or []:
            state_ = container.get("state") or {}
            waiting, ended = state_.get("waiting") or {}, state_.get("terminated") or {}
            if waiting.get("reason") in STUCK_REASONS:
                lines.append(f"{where}: {waiting['reason']}: {waiting.get('message', '')}".rstrip(": "))
            if ended and ended.get("exitCode", 0) != 0:
                message = (ended.get("message") or "").strip()
                if not message and read_logs:
                    message = _log_tail(cluster, pod)
                head = f"{where}: exit code {ended.get('exitCode')} ({ended.get('reason') or 'Error'})"
                lines.append(f"{head}: {' | '.join(message.splitlines())}" if message else head)
        if status.get("phase") == "Failed" and not status.get("containerStatuses") and status.get("reason"):
            lines.append(f"{where}: {status['reason']}: {status.get('message', '')}".rstrip(": "))
    return lines


def run_pods(cluster: Cluster, namespace: str, model: str, run_id: str) -> list[dict[str, Any]]:
    return cluster.list("v1", "Pod", namespace, f"{BATCH_LABEL}={run_id},{MODEL_LABEL}={model}")


def wait(cluster: Cluster, target: Target, name: str, timeout: float | None) -> RunState:
    """Poll the Job until it ends; MlgitError (exit 1) naming each failed shard's reason when it fails."""
    deadline = None if timeout is None else time.monotonic() + timeout
    shown: set[str] = set()
    with progress(f"job/{name}") as show:
        while True:
            job = cluster.get(*JOB, name, target.namespace)
            if job is None:
                raise MlgitError(f"job {name} disappeared from namespace {target.namespace} while it ran")
            run = state(job)
            show(run.summary)
            pods = run_pods(cluster, target.namespace, target.model, run.run_id)
            for line in pod_problems(cluster, pods, read_logs=run.outcome is not None):
                if line not in shown:  # each failure once, as it happens
                    err.print(f"  {line}", markup=False)
                    shown.add(line)
            if run.outcome == "succeeded":
                return run
            if run.outcome == "failed":
                failed = ", ".join(map(str, sorted(run.failed))) or "none"
                raise MlgitError(
                    f"batch run {run.run_id} failed ({run.reason}): {run.summary}; failed shard(s): {failed}",
                    "fix what the lines above name (a bad input file, the storage), then submit the same input and "
                    "output again: the runner skips the outputs that exist, so only the failed files run again",
                    problems=pod_problems(cluster, pods),
                )
            if deadline is not None and time.monotonic() > deadline:
                raise MlgitError(
                    f"batch run {run.run_id} did not finish within {timeout:g}s ({run.summary})",
                    f"it goes on in the cluster: `mlgit batch status --env {target.env} {run.run_id}` follows it",
                )
            time.sleep(POLL_SECONDS)


def runs(cluster: Cluster, target: Target) -> list[RunState]:
    """The environment's batch runs, newest first."""
    jobs = cluster.list(*JOB, target.namespace, f"{target.selector},{BATCH_LABEL}")
    return sorted((state(j) for j in jobs), key=lambda r: r.created, reverse=True)
