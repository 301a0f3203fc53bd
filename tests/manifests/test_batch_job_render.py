"""The batch run's objects (manifests/batch/): golden files, the policies that apply to pods, and the checks of
`mlgit batch submit` that need no cluster (storage, the paths the pods can see, mlgit.yaml `batch:`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlgit import render
from mlgit.cluster import batch_job
from mlgit.cluster.batch_submit import SubmitOptions, prepare
from mlgit.config.batch import BatchSettings
from mlgit.config.load import load_project
from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.errors import MlgitError
from mlgit.policy.engine import PolicySet
from mlgit.policy.inputs import environment_input
from mlgit.resources import shipped_dir
from mlgit.targets import target
from tests.golden import GoldenFiles

IMAGE = "registry.example.com/linear@sha256:" + "1" * 64
UID = "0b7a6c1e-0000-4000-8000-000000000001"

CASES: dict[str, tuple[str, dict[str, Any], str, str]] = {
    # case: (environment, mlgit.yaml changes, input, output)
    "pvc": ("dev", {"batch": {"storage": {"pvc": {"claim": "scans"}}}}, "/data/in", "/data/out"),
    "s3-openshift-gpu": (
        "prod",
        {
            "platform": "openshift",
            "image": {"pull_secrets": ["registry-pull"]},
            "serving": {"device": "gpu", "batching": {"enabled": False}},
            "batch": {
                "parallelism": 2,
                "active_deadline_seconds": 3600,
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "4", "memory": "4Gi"}},
                "storage": {"s3": {"endpoint": "https://s3.example.com", "region": "eu-1", "secret": "s3-creds"}},
                "environments": {"prod": {"parallelism": 8, "completions": 32, "backoff_limit_per_index": 0}},
            },
        },
        "s3://scans/2024",
        "s3://predictions/2024",
    ),
}


def _configure(repo: Path, changes: dict[str, Any]) -> None:
    def merge(into: dict[str, Any], over: dict[str, Any]) -> None:
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    document = read_yaml(repo / "mlgit.yaml")
    merge(document, changes)
    (repo / "mlgit.yaml").write_text(dump_yaml(document), encoding="utf-8")
    render.render(load_project(repo, warn=False))


def _objects(repo: Path, env: str, source: str, sink: str) -> tuple[str, str]:
    project = load_project(repo, warn=False)
    tgt = target(project.config, env)
    run = prepare(project, tgt, SubmitOptions(source, sink, image=IMAGE))
    run = batch_job.BatchRun("abc123", run.input, run.output, run.image, run.settings)
    return batch_job.render_job(project.config, tgt, run), batch_job.render_network_policy(tgt, "abc123", UID)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_objects_match_the_golden_files(case: str, model_repo: Path, golden: GoldenFiles) -> None:
    env, changes, source, sink = CASES[case]
    _configure(model_repo, changes)
    job, policy = _objects(model_repo, env, source, sink)
    golden.check(f"batch/{case}", {"job.yaml": job, "networkpolicy.yaml": policy})


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_objects_pass_every_policy(case: str, model_repo: Path) -> None:
    env, changes, source, sink = CASES[case]
    _configure(model_repo, changes)
    job, policy = _objects(model_repo, env, source, sink)
    # Beside the environment's own objects, as the Job runs: the model's facts (GPU or not) come from them.
    document = environment_input(load_project(model_repo, warn=False), env, image=IMAGE).document
    document["resources"] = [yaml.safe_load(job), yaml.safe_load(policy)]
    findings = PolicySet([shipped_dir("policies")]).evaluate(document)
    assert [f.message for f in findings] == []


def test_the_pods_are_never_the_services_endpoints(model_repo: Path) -> None:
    """The Service selects the serving pods by name and instance: a batch pod must not match both."""
    _configure(model_repo, CASES["pvc"][1])
    job, _ = _objects(model_repo, "dev", "/data/in", "/data/out")
    labels = yaml.safe_load(job)["spec"]["template"]["metadata"]["labels"]
    service = yaml.safe_load((model_repo / "deploy" / "base" / "service.yaml").read_text())
    project = load_project(model_repo, warn=False)
    selector = {**service["spec"]["selector"], "app.kubernetes.io/instance": target(project.config, "dev").instance}
    assert not all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize(
    ("source", "sink", "message"),
    [
        (
            "/elsewhere/in",
            "/data/out",
            "--input /elsewhere/in: the pods see only the PersistentVolumeClaim scans at /data",
        ),
        ("/data/../etc", "/data/out", "--input /data/../etc: the pods see only"),
        ("s3://bucket/in", "/data/out", "--input s3://bucket/in: the environment has no S3 storage"),
        ("/data/in", "gs://bucket/out", "--output gs://bucket/out: unknown scheme"),
        ("/data/in", "/data/in/out", "--input /data/in and --output /data/in/out overlap"),
        ("", "/data/out", "--input is empty"),
    ],
)
def test_paths_the_pods_cannot_see_are_refused(model_repo: Path, source: str, sink: str, message: str) -> None:
    _configure(model_repo, CASES["pvc"][1])
    project = load_project(model_repo, warn=False)
    with pytest.raises(MlgitError) as caught:
        prepare(project, target(project.config, "dev"), SubmitOptions(source, sink, image=IMAGE))
    assert message in caught.value.message


def test_a_run_without_storage_is_refused_naming_the_setting(model_repo: Path) -> None:
    project = load_project(model_repo, warn=False)
    with pytest.raises(MlgitError) as caught:
        prepare(project, target(project.config, "dev"), SubmitOptions("/data/in", "/data/out", image=IMAGE))
    assert "batch: {storage: {pvc: {claim: NAME}}}" in str(caught.value.hint)


def test_flags_override_the_environment_which_overrides_the_top_level(model_repo: Path) -> None:
    _configure(
        model_repo,
        {
            "batch": {
                "parallelism": 3,
                "completions": 12,
                "storage": {"pvc": {"claim": "scans"}},
                "environments": {"staging": {"parallelism": 5}},
            }
        },
    )
    config = load_project(model_repo, warn=False).config
    dev, staging = config.batch.for_environment("dev"), config.batch.for_environment("staging")
    assert (dev.parallelism, dev.completions, staging.parallelism, staging.completions) == (3, 12, 5, 12)
    flags = BatchSettings(parallelism=7)
    assert config.batch.for_environment("dev", flags).completions == 12
    _configure(model_repo, {"batch": {"completions": None}})
    config = load_project(model_repo, warn=False).config
    assert config.batch.for_environment("dev", flags).completions == 7  # no completions anywhere: one per pod


def test_an_override_of_an_unknown_environment_is_refused(model_repo: Path) -> None:
    with pytest.raises(MlgitError) as caught:
        _configure(model_repo, {"batch": {"environments": {"qa": {"parallelism": 2}}}})
    assert "batch.environments: names unknown environment(s) qa" in " ".join(caught.value.problems)
