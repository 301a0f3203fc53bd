"""mlgit.yaml `batch:`: how `mlgit batch submit` runs the model over a folder as a Kubernetes Indexed Job.

The Job runs the model image's runner (`python -m mlgit_serving.batch`), one pod per shard, reading from and
writing to a PersistentVolumeClaim or an S3-compatible bucket. Every field may be overridden per environment
under `batch.environments.<env>`; a field given there replaces the top-level one whole (storage included).
Precedence: `mlgit batch submit` flags > batch.environments.<env> > batch > the defaults written here.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from mlgit.config.serving import ResourcesConfig
from mlgit.config.types import DnsLabel, DnsName, HttpUrl, OneLine, PositiveInt, Strict

_MOUNT_RE = re.compile(r"^/[A-Za-z0-9._/-]*$")
# The Job's pods mount the tmp emptyDir here and the image keeps the model under /models: not for data.
RESERVED_MOUNTS = ("/", "/tmp", "/models")


def _mount(value: str) -> str:
    clean = value.rstrip("/") or "/"
    if not _MOUNT_RE.match(value) or ".." in value.split("/") or clean in RESERVED_MOUNTS:
        raise ValueError(
            f"{value!r} is not a mount path for data: use an absolute path such as /data (not /, /tmp or /models)"
        )
    return clean


MountPath = Annotated[str, AfterValidator(_mount)]


class PvcStorage(Strict):
    claim: DnsName = Field(
        description="The PersistentVolumeClaim, in the environment's namespace (mlgit never creates it)."
    )
    mount: MountPath = Field("/data", description="Where the pods mount it; --input and --output paths lie under it.")


class S3Storage(Strict):
    endpoint: HttpUrl | None = Field(
        None, description="The S3 API's URL (MinIO, Ceph, a cloud's); none: AWS's own (set region then)."
    )
    region: OneLine | None = Field(None, description="AWS_REGION of the pods, where the endpoint needs one.")
    secret: DnsName = Field(
        description="The Secret holding AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, in the environment's "
        "namespace. Never in git: mlgit never writes it, and `mlgit batch submit` refuses to start while it is missing."
    )


class BatchStorage(Strict):
    pvc: PvcStorage | None = Field(None, description="Files on a PersistentVolumeClaim: paths under `mount`.")
    s3: S3Storage | None = Field(None, description="Objects in a bucket: s3://bucket/prefix URIs.")


class BatchSettings(Strict):
    """What a batch Job is made of; each field optional, so that an environment can override a few."""

    parallelism: PositiveInt | None = Field(None, description="Pods that run at once (default 2).")
    completions: PositiveInt | None = Field(
        None, description="Shards: the input files are split into this many, one Job index each (default parallelism)."
    )
    resources: ResourcesConfig | None = Field(
        None, description="CPU and memory of each pod (default serving.resources); GPU models get serving.gpus."
    )
    storage: BatchStorage | None = Field(None, description="Where inputs and outputs live: a PVC and/or S3.")
    backoff_limit_per_index: int | None = Field(
        None,
        ge=0,
        description="Retries of a shard whose pod crashed or was evicted (default 1). A shard whose runner exits 1 "
        "or 2 (bad input files, a usage error) fails at once: a retry would meet the same files.",
    )
    active_deadline_seconds: PositiveInt | None = Field(
        None, description="The whole Job's time limit (default none): Kubernetes stops it after this."
    )
    ttl_seconds_after_finished: int | None = Field(
        None, ge=0, description="Kubernetes deletes a finished Job and its pods this long after (default 7 days)."
    )


DEFAULTS = BatchSettings(parallelism=2, backoff_limit_per_index=1, ttl_seconds_after_finished=7 * 24 * 3600)


class BatchConfig(BatchSettings):
    environments: dict[DnsLabel, BatchSettings] = Field(
        default_factory=dict,
        description="Per environment (or review) overrides: each field given replaces the top-level one.",
    )

    def for_environment(self, env: str, flags: BatchSettings | None = None) -> BatchSettings:
        """The settings of `env`: `flags` (the command line's), its overrides, the top level, then DEFAULTS;
        completions not given anywhere are the parallelism."""
        layers = [flags, self.environments.get(env), self, DEFAULTS]
        values = {}
        for name in BatchSettings.model_fields:
            values[name] = next(
                (getattr(s, name) for s in layers if s is not None and getattr(s, name) is not None), None
            )
        values["completions"] = values["completions"] or values["parallelism"]
        return BatchSettings(**values)

    def check_environments(self, known: list[str]) -> None:
        """Overrides must name an environment of mlgit.yaml (or review), as a typo would silently do nothing."""
        unknown = [env for env in self.environments if env not in known]
        if unknown:
            raise ValueError(
                f"batch.environments: names unknown environment(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )

    @model_validator(mode="after")
    def _storage_given_whole(self) -> BatchConfig:
        for env, settings in self.environments.items():
            if settings.storage is not None and not (settings.storage.pvc or settings.storage.s3):
                raise ValueError(f"environments.{env}.storage: give pvc or s3 (or leave storage out)")
        return self
