"""The input documents the policies read: one per environment, one for the pipeline.

An environment:  {"context": {...}, "resources": [<Kubernetes objects as kustomize builds them>]}
The pipeline:    {"context": {...}, "pipeline": {<.gitlab-ci.yml, `extends` merged>}}
`context` carries what the manifests alone do not say: the environment, its tier, the model's
serving facts (device, batching delay, drain time, largest input) and the allowed registries,
issuers and domains. policies/README.md documents every field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from mlgit.config.load import Project
from mlgit.errors import Location, MlgitError
from mlgit.policy.pipeline import resolve_extends

REVIEW = "review"
PIPELINE = "pipeline"
# Review apps are checked as the branch "policy-check" would deploy them.
REVIEW_SAMPLE_SLUG = "policy-check"
PIPELINE_FILE = ".gitlab-ci.yml"

_ITEMSIZE = {"BOOL": 1, "UINT8": 1, "INT8": 1, "UINT16": 2, "INT16": 2, "FP16": 2, "UINT32": 4, "INT32": 4,
             "FP32": 4, "UINT64": 8, "INT64": 8, "FP64": 8}  # fmt: skip


@dataclass(frozen=True)
class Target:
    """What one evaluation covers: an environment (or review, or the pipeline) and its input document."""

    name: str
    document: dict[str, Any]


def largest_input_bytes(project: Project) -> int:
    """Binary size of the largest batch the model takes: max_batch_size rows (the sample's rows without
    batching) of every input, dynamic inner dimensions sized as in the sample request."""
    batching = project.config.serving.batching
    sample = {t["name"]: t for t in project.sample["inputs"]}
    total = 0
    for spec in project.model.signature.inputs:
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


def _model_context(project: Project) -> dict[str, Any]:
    serving = project.config.serving
    return {
        "name": project.config.name,
        "device": serving.device,
        "gpus": serving.gpus,
        "max_delay_ms": serving.batching.max_delay_ms if serving.batching.enabled else 0,
        "drain_seconds": serving.drain_seconds,
        "max_request_bytes": serving.max_request_bytes,
        "largest_input_bytes": largest_input_bytes(project),
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
        host = (cfg.review.host or "").replace("{slug}", REVIEW_SAMPLE_SLUG)
    elif environment == PIPELINE:
        tier, namespace, host = "other", "", ""
    else:
        env = cfg.environment(environment)
        tier, namespace, host = env.tier, env.namespace, env.host
    return {
        "environment": environment,
        "tier": tier,
        "namespace": namespace,
        "host": host,
        "allowed_domains": [cfg.domain],
        "allowed_registries": list(cfg.allowed_registries),
        "allowed_issuers": _allowed_issuers(project),
        "tiers": {name: env.tier for name, env in cfg.environments.items()},
        "model": _model_context(project),
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


def environment_target(project: Project, environment: str, image: str | None = None) -> Target:
    # Imported here: the policy check must not pull the manifests renderer into every mlgit command.
    from mlgit.manifests.build import build_env

    slug = REVIEW_SAMPLE_SLUG if environment == REVIEW else None
    resources = build_env(project, environment, image=image, slug=slug)
    return Target(environment, {"context": context(project, environment), "resources": resources})


def _pipeline_text(project: Project) -> str | None:
    from mlgit.render import plan

    rendered = plan(project).get(PIPELINE_FILE)
    if rendered is not None:
        return rendered.content
    on_disk = project.root / PIPELINE_FILE
    return on_disk.read_text(encoding="utf-8") if on_disk.is_file() else None


def _load_pipeline(text: str, project: Project) -> dict[str, Any]:
    yaml = YAML(typ="safe")
    # GitLab's `!reference [job, key]` tag: kept as its list, which no policy reads.
    yaml.constructor.add_constructor("!reference", lambda loader, node: loader.construct_sequence(node))
    try:
        doc = yaml.load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = Location(project.root / PIPELINE_FILE, mark.line + 1 if mark else None)
        raise MlgitError(f"the pipeline is not valid YAML: {exc}", location=where) from None
    return doc if isinstance(doc, dict) else {}


def pipeline_target(project: Project) -> tuple[Target | None, list[str]]:
    """The pipeline's target, or None without a .gitlab-ci.yml; plus notes on what was not checked."""
    text = _pipeline_text(project)
    if text is None:
        return None, [f"no {PIPELINE_FILE} is rendered or present: pipeline policies were not evaluated"]
    jobs, unknown = resolve_extends(_load_pipeline(text, project))
    notes = [f"{PIPELINE_FILE}: jobs extend {', '.join(unknown)} from included files; those parts were not checked"]
    document = {"context": context(project, PIPELINE), "pipeline": jobs}
    return Target(PIPELINE, document), notes if unknown else []
