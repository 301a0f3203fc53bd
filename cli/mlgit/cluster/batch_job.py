"""A batch run's objects: the Indexed Job that runs the model image's runner, and its NetworkPolicy.

Rendered from manifests/batch/ with the settings of one environment (mlgit.yaml `batch:`), the image that
environment deploys, and the run's input and output: local paths on the PersistentVolumeClaim the pods
mount, or s3://bucket/prefix. Checked here, before anything reaches the cluster, so that a path the pods
cannot see is refused with the fix rather than failing in every pod.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

import yaml

from mlgit.cluster.objects import Obj
from mlgit.config.batch import BatchSettings
from mlgit.config.schema import MlgitConfig
from mlgit.errors import MlgitError
from mlgit.targets import Target
from mlgit.templating import render_template

BATCH_LABEL = "mlgit.dev/batch"
COMPONENT = "batch"
RUN_ID_LENGTH = 6
# The pods' hostnames are <job name>-<index>; within 63 characters up to index 9999999999.
JOB_NAME_MAX = 52
_RUN_ID_CHARS = string.ascii_lowercase + string.digits


def new_run_id() -> str:
    """A short random id, as Kubernetes' generateName makes them; runs are listed by creation time."""
    return "".join(secrets.choice(_RUN_ID_CHARS) for _ in range(RUN_ID_LENGTH))


def job_name(target: Target, run_id: str) -> str:
    suffix = f"-batch-{run_id}"
    return target.name[: JOB_NAME_MAX - len(suffix)].rstrip("-") + suffix


def run_labels(target: Target, run_id: str) -> dict[str, str]:
    """The target's labels (so that status and destroy select them) with component batch and the run id.

    app.kubernetes.io/instance is the Job's name, not the environment's: the Service selects the serving
    pods by name and instance, and a batch pod must never receive inference traffic.
    """
    return {
        **target.labels,
        "app.kubernetes.io/instance": job_name(target, run_id),
        "app.kubernetes.io/component": COMPONENT,
        BATCH_LABEL: run_id,
    }


@dataclass(frozen=True)
class BatchRun:
    """What one `mlgit batch submit` asks for; flags already merged over the environment's settings."""

    run_id: str
    input: str
    output: str
    image: str
    settings: BatchSettings


def settings_for(
    config: MlgitConfig, target: Target, parallelism: int | None, completions: int | None
) -> BatchSettings:
    """The environment's batch settings with the command line's parallelism and completions over them."""
    flags = BatchSettings(parallelism=parallelism, completions=completions)
    settings = config.batch.for_environment(target.env, flags)
    if settings.storage is None or not (settings.storage.pvc or settings.storage.s3):
        raise MlgitError(
            f"mlgit.yaml says nowhere where batch data of {target.display_name} lives",
            "add `batch: {storage: {pvc: {claim: NAME}}}` (a PersistentVolumeClaim) or "
            "`batch: {storage: {s3: {endpoint: URL, secret: NAME}}}` (a bucket) to mlgit.yaml",
        )
    return settings


def check_uri(uri: str, option: str, settings: BatchSettings, variable: str) -> str:
    """`uri` as the pods will see it, or MlgitError saying why they cannot and what to pass instead."""
    storage = settings.storage
    assert storage is not None  # settings_for refused a run without storage
    if not uri.strip():
        raise MlgitError(
            f"{option} is empty", f"pass {option} URI; in the pipeline, set {variable} when running the job"
        )
    if uri.startswith("s3://"):
        bucket = uri.removeprefix("s3://").split("/", 1)[0]
        if not bucket:
            raise MlgitError(f"{option} {uri}: no bucket", "write s3://BUCKET/PREFIX")
        if storage.s3 is None:
            raise MlgitError(
                f"{option} {uri}: the environment has no S3 storage",
                "add batch.storage.s3 {endpoint, secret} to mlgit.yaml, or pass a path on the PVC",
            )
        return uri
    if "://" in uri:
        raise MlgitError(f"{option} {uri}: unknown scheme", "pass s3://BUCKET/PREFIX or a path on the PVC")
    pvc = storage.pvc
    if pvc is None:
        raise MlgitError(
            f"{option} {uri}: a path, but the environment mounts no PersistentVolumeClaim",
            "pass s3://BUCKET/PREFIX, or add batch.storage.pvc {claim, mount} to mlgit.yaml",
        )
    parts = uri.split("/")
    inside = uri == pvc.mount or uri.startswith(pvc.mount + "/")
    if not uri.startswith("/") or ".." in parts or not inside:
        raise MlgitError(
            f"{option} {uri}: the pods see only the PersistentVolumeClaim {pvc.claim} at {pvc.mount}",
            f"pass an absolute path under {pvc.mount}, e.g. {pvc.mount}/inputs",
        )
    return uri


def _resources(config: MlgitConfig, settings: BatchSettings) -> dict[str, dict[str, str]]:
    amounts = (settings.resources or config.serving.resources).model_dump()
    resources = {section: {k: v for k, v in values.items() if v is not None} for section, values in amounts.items()}
    if config.serving.gpus:
        resources["limits"]["nvidia.com/gpu"] = str(config.serving.gpus)
    return resources


def render_job(config: MlgitConfig, target: Target, run: BatchRun) -> str:
    """The Job's YAML (manifests/batch/job.yaml.j2)."""
    settings = run.settings
    storage = settings.storage
    assert storage is not None
    return render_template(
        "manifests",
        "batch/job.yaml.j2",
        job_name=job_name(target, run.run_id),
        labels=run_labels(target, run.run_id),
        input=run.input,
        output=run.output,
        image=run.image,
        completions=settings.completions,
        parallelism=settings.parallelism,
        backoff_limit_per_index=settings.backoff_limit_per_index,
        active_deadline_seconds=settings.active_deadline_seconds,
        ttl_seconds_after_finished=settings.ttl_seconds_after_finished,
        fixed_ids=target.platform != "openshift",
        pull_secrets=config.image.pull_secrets,
        node_selector=config.serving.node_selector,
        tolerations=config.serving.tolerations,
        resources=_resources(config, settings),
        pvc=storage.pvc,
        s3=storage.s3,
    )


def render_network_policy(target: Target, run_id: str, job_uid: str) -> str:
    """The NetworkPolicy that shuts the run's pods off from all traffic, owned by the Job `job_uid`."""
    return render_template(
        "manifests",
        "batch/networkpolicy.yaml.j2",
        job_name=job_name(target, run_id),
        job_uid=job_uid,
        labels=run_labels(target, run_id),
        run_id=run_id,
        model=target.model,
    )


def load(text: str) -> Obj:
    document: dict[str, Any] = yaml.safe_load(text)
    return document
