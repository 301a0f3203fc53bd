"""The input documents the policies read: one per environment, one for the pipeline.

An environment:  {"context": {...}, "resources": [<Kubernetes objects as kustomize builds them>]}
The pipeline:    {"context": {...}, "pipeline": {<the committed .gitlab-ci.yml, `extends` merged>}}
Policies judge the files themselves: the built manifests and the .gitlab-ci.yml GitLab runs, never a
re-render or the config they came from. So what `context.model` says about what runs is read from the
built objects too: device, batching delay, request body limit and largest input from the model-settings.json
of the built ConfigMap (read as the runtime reads it), the drain time from the server container's
MLGIT_SERVING_DRAIN_SECONDS. The rest of `context` states no fact about the files but what they are held
against, so it comes from elsewhere: from mlgit.yaml through the environment's Target (its name, tier and
namespace; the tiers of all environments), the model's name and `gpus` (the GPU count MLGIT-RES-002
expects of the Deployment's limit); and the allowed domains, registries and issuers, mlgit.yaml's narrowed
to the platform team's lists (policy/settings.py). policies/README.md documents every field.
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
from mlgit.config.schema import MlgitConfig
from mlgit.errors import Location, MlgitError
from mlgit.model_settings import BatchingSettings, ModelSettings, TensorSpec
from mlgit.policy.pipeline import GITLAB_CI, resolve_extends
from mlgit.policy.settings import PlatformSettings, domain_within, issuer_within, narrow, registry_within
from mlgit.runtime_settings import RUNTIME_SETTINGS
from mlgit.targets import REVIEW, Target, known_targets, target

PIPELINE = "pipeline"
# The pipeline's document is of no environment: policies read its tier as "other".
PIPELINE_TIER = "other"
# Review apps are checked as the branch "policy-check" would deploy them.
REVIEW_SAMPLE_SLUG = "policy-check"
DRAIN_ENV = "MLGIT_SERVING_DRAIN_SECONDS"
# The serving runtime's drain time when its container does not set DRAIN_ENV (mlgit_serving.settings,
# which the CLI does not import; tests/policy/test_inputs.py checks that the two agree).
RUNTIME_DRAIN_SECONDS = 20
# mlgit names the container that serves the model `server` (policies/lib/mlgit.rego does too).
SERVER_CONTAINER = "server"

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
    # An environment with instances holds one copy per instance, all from deploy/base: one file still.
    if len({m["data"][RUNTIME_SETTINGS] for m in maps}) != 1:
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


def drain_seconds(resources: list[dict[str, Any]], environment: str) -> float:
    """How long the environment's server drains on SIGTERM: the MLGIT_SERVING_DRAIN_SECONDS of the server
    container of its Deployment(s) (the longest, should there be several), else the runtime's default."""
    found = []
    for r in resources:
        if r.get("kind") != "Deployment":
            continue
        pod = ((r.get("spec") or {}).get("template") or {}).get("spec") or {}
        for container in pod.get("containers") or []:
            if container.get("name") != SERVER_CONTAINER:
                continue
            for var in container.get("env") or []:
                if var.get("name") == DRAIN_ENV and "value" in var:
                    found.append(_seconds(var["value"], r, environment))
    seconds = max(found, default=RUNTIME_DRAIN_SECONDS)
    return int(seconds) if float(seconds).is_integer() else seconds


def _seconds(value: object, deployment: dict[str, Any], environment: str) -> float:
    try:
        return float(str(value))
    except ValueError:
        name = (deployment.get("metadata") or {}).get("name", "?")
        raise MlgitError(
            f"Deployment {name} of {environment}: {DRAIN_ENV} is {value!r}, not a number of seconds "
            "(the serving runtime would not start)",
            "run `mlgit render` to restore deploy/base/deployment.yaml",
        ) from None


def _model_context(project: Project, resources: list[dict[str, Any]], environment: str) -> dict[str, Any]:
    """What the environment's server runs, read from its built objects; `name` and `gpus`, expectations that
    no policy judges, from mlgit.yaml."""
    settings = served_settings(resources, environment)
    # Without declared inputs the runtime serves those of the ONNX model itself.
    inputs = project.model.signature.inputs if settings.inputs is None else settings.inputs
    batching = settings.batching
    return {
        "name": project.config.name,
        "device": settings.device,
        "gpus": project.config.serving.gpus,
        "max_delay_ms": batching.max_delay_ms if batching.enabled else 0,
        "drain_seconds": drain_seconds(resources, environment),
        "max_request_bytes": settings.max_request_bytes,
        "largest_input_bytes": largest_input_bytes(inputs, batching, project.sample["inputs"]),
    }


def _configured_issuers(config: MlgitConfig) -> list[str]:
    if config.policy.allowed_issuers:
        return list(config.policy.allowed_issuers)
    tls = [e.tls for e in config.environments.values()] + [config.review.tls]
    return sorted({t.issuer for t in tls if t is not None})


@dataclass(frozen=True)
class Allowed:
    """The allowed domains, registries and issuers: mlgit.yaml's, narrowed to the platform's lists."""

    domains: list[str]
    registries: list[str]
    issuers: list[str]
    notes: list[str]
    """What mlgit.yaml allows and the platform does not, for the report."""


def allowed(config: MlgitConfig, platform: PlatformSettings) -> Allowed:
    lists = {
        "domains": ("domain", [config.domain], platform.allowed_domains, domain_within),
        "registries": ("registry", config.allowed_registries, platform.allowed_registries, registry_within),
        "issuers": ("issuer", _configured_issuers(config), platform.allowed_issuers, issuer_within),
    }
    values: dict[str, list[str]] = {}
    notes = []
    for key, (what, own, theirs, within) in lists.items():
        values[key], changed = narrow(own, theirs, within)
        for entry, inside in changed:
            assert theirs is not None
            instead = f"only {', '.join(inside)} inside it is" if inside else "it is not"
            notes.append(
                f"mlgit.yaml allows {what} {entry}, which the platform's list does not ({theirs.source}: "
                f"{', '.join(theirs.values)}): {instead} allowed"
            )
    return Allowed(**values, notes=notes)


def policy_target(config: MlgitConfig, environment: str) -> Target:
    """The Target an environment's document is of (review: its app for the branch `policy-check`);
    MlgitError names the known ones otherwise, as every command does."""
    return target(config, environment, REVIEW_SAMPLE_SLUG if environment == REVIEW else None)


def context(project: Project, environment: str, platform: PlatformSettings | None = None) -> dict[str, Any]:
    """The `context` of `environment` (an environment of mlgit.yaml, `review` or `pipeline`)."""
    cfg = project.config
    if environment == PIPELINE:
        tier, namespace = PIPELINE_TIER, ""
    else:
        tgt = policy_target(cfg, environment)
        tier, namespace = tgt.tier, tgt.namespace
    lists = allowed(cfg, platform or PlatformSettings())
    return {
        "environment": environment,
        "tier": tier,
        "namespace": namespace,
        "allowed_domains": lists.domains,
        "allowed_registries": lists.registries,
        "allowed_issuers": lists.issuers,
        "tiers": {name: target(cfg, name).tier for name in cfg.environments},
    }


def environment_names(project: Project, env: str | None) -> list[str]:
    """`env` alone (a known target: an environment of mlgit.yaml, or review when it is enabled), or all."""
    if env is None:
        return known_targets(project.config)
    policy_target(project.config, env)
    return [env]


def environment_input(
    project: Project, environment: str, image: str | None = None, platform: PlatformSettings | None = None
) -> PolicyInput:
    """The environment's manifests as kustomize builds them (with `image` instead of the pinned one)."""
    # Imported here: the policy check must not pull the manifests renderer into every mlgit command.
    from mlgit.manifests.build import build_env

    slug = REVIEW_SAMPLE_SLUG if environment == REVIEW else None
    resources = build_env(project, environment, image=image, slug=slug)
    document = {
        "context": {
            **context(project, environment, platform),
            "model": _model_context(project, resources, environment),
        },
        "resources": resources,
    }
    return PolicyInput(environment, document)


def _load_pipeline(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MlgitError(
            f"{path} not found: the pipeline policies judge the committed {GITLAB_CI}",
            "run `mlgit render` and commit it, or check one environment with --env",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MlgitError(f"cannot read {GITLAB_CI}: {exc}", location=Location(path)) from None
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


def pipeline_input(project: Project, platform: PlatformSettings | None = None) -> tuple[PolicyInput, list[str]]:
    """The committed .gitlab-ci.yml, what GitLab runs (`render --check` proves it matches mlgit.yaml);
    plus notes on what was not checked."""
    jobs, unknown = resolve_extends(_load_pipeline(project.root / GITLAB_CI))
    notes = [f"{GITLAB_CI}: jobs extend {', '.join(unknown)} from included files; those parts were not checked"]
    document = {"context": context(project, PIPELINE, platform), "pipeline": jobs}
    return PolicyInput(PIPELINE, document), notes if unknown else []
