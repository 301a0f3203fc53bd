"""The input documents the policies read: one per environment, one for the pipeline.

An environment:  {"context": {...}, "resources": [<Kubernetes objects as kustomize builds them>]}
The pipeline:    {"context": {...}, "pipeline": {<the committed .gitlab-ci.yml, `extends` merged>}}
Policies judge the files themselves: the built manifests and the .gitlab-ci.yml GitLab runs, never a
re-render or the config they came from. `context` carries what those files alone do not say: the
environment, its tier, the allowed registries, issuers and domains and, for an environment, the model's
serving facts (device, batching delay, drain time, and its largest input, sized from the model-settings.json
of the built ConfigMap). policies/README.md documents every field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from mlgit.config.load import Project
from mlgit.errors import Location, MlgitError
from mlgit.model_settings import BatchingSettings, ModelSettings, TensorSpec
from mlgit.policy.pipeline import resolve_extends
from mlgit.runtime_settings import RUNTIME_SETTINGS
from mlgit.targets import REVIEW

PIPELINE = "pipeline"
# Review apps are checked as the branch "policy-check" would deploy them.
REVIEW_SAMPLE_SLUG = "policy-check"
PIPELINE_FILE = ".gitlab-ci.yml"

_ITEMSIZE = {"BOOL": 1, "UINT8": 1, "INT8": 1, "UINT16": 2, "INT16": 2, "FP16": 2, "UINT32": 4, "INT32": 4,
             "FP32": 4, "UINT64": 8, "INT64": 8, "FP64": 8}  # fmt: skip


@dataclass(frozen=True)
class PolicyInput:
    """One input document and what it is of (an environment, review or the pipeline): one evaluation."""

    name: str
    document: dict[str, Any]


def served_settings(resources: list[dict[str, Any]], environment: str) -> ModelSettings:
    """The model-settings.json the environment's server reads (the built ConfigMap carrying it), read as the
    runtime reads it: what the file leaves out takes the runtime's defaults."""
    maps = [r for r in resources if r.get("kind") == "ConfigMap" and RUNTIME_SETTINGS in (r.get("data") or {})]
    if len(maps) != 1:
        raise MlgitError(
            f"the manifests of {environment} hold {len(maps)} ConfigMaps with a {RUNTIME_SETTINGS}, not one",
            "deploy/base/kustomization.yaml generates it; run `mlgit render` to restore deploy/",
        )
    try:
        return ModelSettings.model_validate_json(maps[0]["data"][RUNTIME_SETTINGS])
    except ValidationError as exc:
        name = maps[0].get("metadata", {}).get("name", "?")
        raise MlgitError(
            f"ConfigMap {name} of {environment}: {RUNTIME_SETTINGS} is not what the serving runtime reads",
            "run `mlgit render` to regenerate deploy/base/model-settings.json",
            problems=[f"{'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg']}" for e in exc.errors()],
        ) from None


def largest_input_bytes(
    inputs: list[TensorSpec], batching: BatchingSettings, sample_inputs: list[dict[str, Any]]
) -> int:
    """Binary size of the largest batch the server admits: max_batch_size rows (the sample's rows without
    batching) of every input, dynamic inner dimensions sized as in the sample request."""
    sample = {t["name"]: t for t in sample_inputs}
    total = 0
    for spec in inputs:
        if spec.name not in sample:
            raise MlgitError(
                f"{RUNTIME_SETTINGS} declares input {spec.name!r}, which the sample request does not send",
                "deploy/ is older than the model: run `mlgit render`",
            )
        tensor = sample[spec.name]
        shape = [int(d) for d in tensor.get("shape", spec.shape)]
        sample_rows = max(shape[0], 1) if shape else 1
        if spec.datatype == "BYTES":
            # BYTES travel as 4-byte length + content per element.
            data = tensor.get("data", [])
            row_bytes = sum(4 + len(str(item).encode()) for item in data) / sample_rows
        else:
            row_bytes = _ITEMSIZE[spec.datatype] * math.prod(shape[1:])
        rows = batching.max_batch_size if (batching.enabled and spec.batch_dynamic) else sample_rows
        total += math.ceil(rows * row_bytes)
    return total


def _model_context(project: Project, resources: list[dict[str, Any]], environment: str) -> dict[str, Any]:
    serving = project.config.serving
    settings = served_settings(resources, environment)
    # Without declared inputs the runtime serves those of the ONNX model itself.
    inputs = project.model.signature.inputs if settings.inputs is None else settings.inputs
    return {
        "name": project.config.name,
        "device": serving.device,
        "gpus": serving.gpus,
        "max_delay_ms": serving.batching.max_delay_ms if serving.batching.enabled else 0,
        "drain_seconds": serving.drain_seconds,
        "max_request_bytes": serving.max_request_bytes,
        "largest_input_bytes": largest_input_bytes(inputs, settings.batching, project.sample["inputs"]),
    }


def _allowed_issuers(project: Project) -> list[str]:
    cfg = project.config
    if cfg.policy.allowed_issuers:
        return list(cfg.policy.allowed_issuers)
    tls = [e.tls for e in cfg.environments.values()] + [cfg.review.tls]
    return sorted({t.issuer for t in tls if t is not None})


def context(project: Project, environment: str) -> dict[str, Any]:
    """The `context` of `environment` (an environment of mlgit.yaml, `review` or `pipeline`)."""
    cfg = project.config
    if environment == REVIEW:
        tier, namespace = "development", cfg.review.namespace
    elif environment == PIPELINE:
        tier, namespace = "other", ""
    else:
        env = cfg.environment(environment)
        tier, namespace = env.tier, env.namespace
    return {
        "environment": environment,
        "tier": tier,
        "namespace": namespace,
        "allowed_domains": [cfg.domain],
        "allowed_registries": list(cfg.allowed_registries),
        "allowed_issuers": _allowed_issuers(project),
        "tiers": {name: env.tier for name, env in cfg.environments.items()},
    }


def environment_names(project: Project, env: str | None) -> list[str]:
    """`env` alone (checked against mlgit.yaml), or every environment plus review when it is enabled."""
    cfg = project.config
    if env is not None:
        if env != REVIEW or not cfg.review.enabled:
            try:
                cfg.environment(env)
            except KeyError as exc:
                raise MlgitError(str(exc.args[0]), "pass --env with an environment of mlgit.yaml, or --all") from None
        return [env]
    return [*cfg.environments, *([REVIEW] if cfg.review.enabled else [])]


def environment_input(project: Project, environment: str, image: str | None = None) -> PolicyInput:
    """The environment's manifests as kustomize builds them (with `image` instead of the pinned one)."""
    # Imported here: the policy check must not pull the manifests renderer into every mlgit command.
    from mlgit.manifests.build import build_env

    slug = REVIEW_SAMPLE_SLUG if environment == REVIEW else None
    resources = build_env(project, environment, image=image, slug=slug)
    document = {
        "context": {**context(project, environment), "model": _model_context(project, resources, environment)},
        "resources": resources,
    }
    return PolicyInput(environment, document)


def _load_pipeline(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MlgitError(
            f"{path} not found: the pipeline policies judge the committed {PIPELINE_FILE}",
            "run `mlgit render` and commit it, or check one environment with --env",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MlgitError(f"cannot read {PIPELINE_FILE}: {exc}", location=Location(path)) from None
    yaml = YAML(typ="safe")
    # GitLab's `!reference [job, key]` tag: kept as its list, which no policy reads.
    yaml.constructor.add_constructor("!reference", lambda loader, node: loader.construct_sequence(node))
    try:
        doc = yaml.load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = Location(path, mark.line + 1 if mark else None)
        raise MlgitError(f"the pipeline is not valid YAML: {exc}", location=where) from None
    if not isinstance(doc, dict):
        raise MlgitError("the pipeline is not a mapping of job names to jobs", location=Location(path))
    return doc


def pipeline_input(project: Project) -> tuple[PolicyInput, list[str]]:
    """The committed .gitlab-ci.yml, what GitLab runs (`render --check` proves it matches mlgit.yaml);
    plus notes on what was not checked."""
    jobs, unknown = resolve_extends(_load_pipeline(project.root / PIPELINE_FILE))
    notes = [f"{PIPELINE_FILE}: jobs extend {', '.join(unknown)} from included files; those parts were not checked"]
    document = {"context": context(project, PIPELINE), "pipeline": jobs}
    return PolicyInput(PIPELINE, document), notes if unknown else []
