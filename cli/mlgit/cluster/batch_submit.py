"""`mlgit batch submit`: check what the run needs, apply its Job (and NetworkPolicy), and optionally follow it.

The image is the one the environment deploys (`--image`, else the digest pinned in git: the same rule as
`mlgit deploy`). What the pods need and mlgit never creates (the PersistentVolumeClaim, the S3 credentials'
Secret, the registry pull secrets) is checked before anything is applied, as deploy checks its Secrets:
a pod that mounts a missing claim or Secret never starts, and the Job would only hang.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.markup import escape

from mlgit.cluster import apply, batch_job, batch_track
from mlgit.cluster.client import Cluster, connect
from mlgit.cluster.deploy import pinned_image
from mlgit.cluster.secrets import PULL_SECRET_TYPE, needed_secrets, secret_problem
from mlgit.config.batch import BatchSettings
from mlgit.config.load import Project
from mlgit.console import err, out
from mlgit.errors import MlgitError
from mlgit.targets import Target

S3_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@dataclass(frozen=True)
class SubmitOptions:
    input: str
    output: str
    parallelism: int | None = None
    completions: int | None = None
    image: str | None = None
    wait: bool = False
    timeout: float | None = None
    dry_run: bool = False


def _overlap(a: str, b: str) -> bool:
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def prepare(project: Project, target: Target, options: SubmitOptions) -> batch_job.BatchRun:
    """The run, checked against mlgit.yaml: storage, paths the pods can see, the pinned image."""
    settings = batch_job.settings_for(project.config, target, options.parallelism, options.completions)
    source = batch_job.check_uri(options.input, "--input", settings, "MLGIT_BATCH_INPUT")
    sink = batch_job.check_uri(options.output, "--output", settings, "MLGIT_BATCH_OUTPUT")
    if _overlap(source, sink):
        raise MlgitError(
            f"--input {source} and --output {sink} overlap",
            "write the outputs elsewhere: a later run would read them as inputs",
        )
    image = pinned_image(project, target, options.image)
    return batch_job.BatchRun(batch_job.new_run_id(), source, sink, image, settings)


def _missing(cluster: Cluster, project: Project, target: Target, settings: BatchSettings) -> list[tuple[str, str]]:
    """(problem, the command that fixes it) for each object the pods need that is not there."""
    ns, found = target.namespace, []
    storage = settings.storage
    assert storage is not None
    if storage.pvc and cluster.get("v1", "PersistentVolumeClaim", storage.pvc.claim, ns) is None:
        found.append(
            (
                f"PersistentVolumeClaim {storage.pvc.claim} (batch.storage.pvc.claim) does not exist in namespace {ns}",
                f"kubectl apply --namespace {ns} -f <a PersistentVolumeClaim named {storage.pvc.claim}>",
            )
        )
    if storage.s3:
        secret = cluster.get("v1", "Secret", storage.s3.secret, ns)
        keys = set((secret or {}).get("data") or {})
        absent = [k for k in S3_KEYS if k not in keys]
        if absent:
            what = "does not exist" if secret is None else f"lacks {', '.join(absent)}"
            found.append(
                (
                    f"Secret {storage.s3.secret} (batch.storage.s3.secret) {what} in namespace {ns}",
                    f"kubectl create secret generic {storage.s3.secret} --namespace {ns} "
                    "--from-literal=AWS_ACCESS_KEY_ID=<key id> --from-literal=AWS_SECRET_ACCESS_KEY=<secret key>",
                )
            )
    for needed in needed_secrets(project.config, target):
        if needed.type != PULL_SECRET_TYPE:
            continue  # the serving pods' API keys: the batch pods serve nothing
        problem = secret_problem(cluster, ns, needed)
        if problem is not None:
            found.append((problem, needed.create))
    return found


def check_needs(cluster: Cluster, project: Project, target: Target, settings: BatchSettings) -> None:
    if apply.namespace_exists(cluster, target.namespace) is False:
        raise MlgitError(
            f"namespace {target.namespace} does not exist (context {cluster.context})",
            f"deploy the environment first (`mlgit deploy --env {target.env}`), or create the namespace with the "
            "batch storage in it",
        )
    missing = _missing(cluster, project, target, settings)
    if missing:
        raise MlgitError(
            f"the batch run in {target.display_name} needs what mlgit does not create: "
            + "; ".join(p for p, _ in missing),
            "create it first, then submit again (nothing was applied):\n  " + "\n  ".join(c for _, c in missing),
        )


def submit(project: Project, target: Target, options: SubmitOptions) -> batch_track.RunState | None:
    """Apply the run; with `wait`, follow it to the end (MlgitError when a shard fails)."""
    run = prepare(project, target, options)
    job_text = batch_job.render_job(project.config, target, run)
    if options.dry_run:
        err.print("[dim]dry run, nothing applied: the Job[/]")
        out.print(escape(job_text), end="")
        return None
    cluster = connect(target.context, target.context_setting)
    (job,) = apply.place(cluster, target, [batch_job.load(job_text)])
    check_needs(cluster, project, target, run.settings)
    stored, _ = apply.server_side_apply(cluster, job, None, force_conflicts=False)
    policy = batch_job.load(batch_job.render_network_policy(target, run.run_id, stored["metadata"]["uid"]))
    (policy,) = apply.place(cluster, target, [policy])
    apply.server_side_apply(cluster, policy, None, force_conflicts=False)
    name, settings = stored["metadata"]["name"], run.settings
    out.print(
        f"batch run {run.run_id} submitted: job/{name} in namespace {target.namespace}, "
        f"{settings.completions} shard(s), {settings.parallelism} at a time, image {run.image}"
    )
    if not options.wait:
        out.print(f"follow it with `mlgit batch status --env {target.env} {run.run_id}`")
        return None
    finished = batch_track.wait(cluster, target, name, options.timeout)
    out.print(f"[green]batch run {run.run_id} succeeded[/]: {finished.summary}; outputs in {escape(run.output)}")
    return finished
