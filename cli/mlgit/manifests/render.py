"""The manifests renderer: mlgit.yaml -> deploy/base, deploy/components/<trait>, deploy/overlays/<env>."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlgit.config.auth import API_KEYS_DIR
from mlgit.config.load import Project
from mlgit.config.schema import MlgitConfig
from mlgit.config.serving import METRICS_PORT
from mlgit.files import RenderedFile
from mlgit.manifests.alerts import prometheus_rule
from mlgit.manifests.canary import (
    CANARY_OBJECTS,
    TRACK_LABEL,
    canary_objects,
    canary_patches,
    canary_route,
    deployment_target,
    pin_file,
    replacements_context,
)
from mlgit.manifests.dashboard import dashboard_json
from mlgit.manifests.grpc_exposure import grpc_exposure_yaml
from mlgit.manifests.instances import instance_files, instance_targets
from mlgit.manifests.openshift import overlay_patches, route_objects, wildcard_files
from mlgit.runtime_settings import runtime_settings_dict, settings_json
from mlgit.targets import REVIEW, Target, known_targets, target, targets_of
from mlgit.templating import render_template

DEPLOY = "deploy"
IN_FLIGHT_METRIC = "mlgit_inference_pending_requests"  # the serving runtime's gauge (mlgit_serving.metrics)
_SHUTDOWN_DELAY_SECONDS = 5
_GRACE_MARGIN_SECONDS = 10


@dataclass(frozen=True)
class PublicPath:
    """A path a route exposes: a prefix (whole path segments, as Ingress Prefix and PathPrefix match) or exact."""

    path: str
    exact: bool = False


API_PATH = PublicPath("/v2")  # the inference API, health and metadata (Open Inference Protocol v2)
# What each `exposure.public` extra adds to the route, and the server setting that turns it on (the overlay's
# <extra>.yaml patch sets it: true exactly where the extra is routed, so nothing unrouted is served).
EXTRA_PATHS = {
    "docs": (PublicPath("/docs"), PublicPath("/openapi.json", exact=True)),
    "ui": (PublicPath("/ui"),),
}
EXTRA_SWITCHES = {"docs": "MLGIT_SERVING_DOCS", "ui": "MLGIT_SERVING_UI"}


def public_paths(public: Iterable[str]) -> list[PublicPath]:
    """The paths a route of an environment exposes: /v2, then each extra of its `exposure.public`, once."""
    return [API_PATH, *(p for extra in dict.fromkeys(public) for p in EXTRA_PATHS[extra])]


def _size(nbytes: int) -> str:
    """A byte count the way nginx writes sizes (64m), exact."""
    for unit, factor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if nbytes % factor == 0:
            return f"{nbytes // factor}{unit}"
    return str(nbytes)


def exposure_annotations(config: MlgitConfig, tgt: Target) -> dict[str, str]:
    """Annotations of the Ingress, HTTPRoute or Route: cert-manager, the controller's limits, then the user's own.

    A review app with the shared wildcard certificate asks cert-manager for nothing of its own."""
    annotations: dict[str, str] = {}
    issue = tgt.tls.enabled and tgt.wildcard_secret is None
    if tgt.exposure.kind == "route":
        if issue:
            # cert-manager's openshift-routes controller (it has no cluster-issuer annotation).
            annotations["cert-manager.io/issuer-name"] = tgt.tls.issuer
            annotations["cert-manager.io/issuer-kind"] = tgt.tls.issuer_kind
            annotations["cert-manager.io/issuer-group"] = "cert-manager.io"
        annotations["haproxy.router.openshift.io/timeout"] = f"{tgt.exposure.timeout_seconds}s"
    if tgt.exposure.kind == "ingress":
        if issue:
            key = "cluster-issuer" if tgt.tls.issuer_kind == "ClusterIssuer" else "issuer"
            annotations[f"cert-manager.io/{key}"] = tgt.tls.issuer
        if "nginx" in tgt.exposure.ingress_class:
            timeout = str(tgt.exposure.timeout_seconds)
            annotations["nginx.ingress.kubernetes.io/proxy-body-size"] = _size(config.serving.max_request_bytes)
            annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] = timeout
            annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] = timeout
    annotations.update(tgt.exposure.annotations)
    return annotations


def exposure_yaml(config: MlgitConfig, tgt: Target) -> str:
    """The objects that expose `tgt` (Ingress, HTTPRoute + Certificate, or Routes) and admit their traffic."""
    return render_template(
        "manifests",
        "overlays/env/exposure.yaml.j2",
        name=tgt.name,
        model=config.name,
        service=tgt.name,
        namespace=tgt.namespace,
        host=tgt.host,
        secret=tgt.tls_secret,
        exposure=tgt.exposure,
        tls=tgt.tls,
        annotations=exposure_annotations(config, tgt),
        allowed_namespaces=tgt.allowed_namespaces,
        public_paths=public_paths(tgt.exposure.public or []),
        routes=route_objects(tgt.name, [p.path for p in public_paths(tgt.exposure.public or [])]),
        secret_provided=tgt.wildcard_secret is not None,
        canary=canary_route(tgt),
    )


def _resources(amounts: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {section: {k: v for k, v in values.items() if v is not None} for section, values in amounts.items()}


def _base(project: Project) -> Iterator[RenderedFile]:
    cfg = project.config
    serving = cfg.serving
    gpu = serving.device == "gpu"
    context = {
        "name": cfg.name,
        "port": serving.port,
        "grpc_port": serving.grpc_port,
        "workers": serving.workers,
        "drain_seconds": serving.drain_seconds,
        "progress_deadline_seconds": serving.progress_deadline_seconds,
        "shutdown_delay_seconds": min(_SHUTDOWN_DELAY_SECONDS, serving.drain_seconds),
        "grace_seconds": serving.drain_seconds + _GRACE_MARGIN_SECONDS,
        "resources": _resources(serving.resources.model_dump()),
        # GPU models get their scheduling from components/gpu.
        "node_selector": {} if gpu else serving.node_selector,
        "tolerations": [] if gpu else serving.tolerations,
        "startup_failures": 60 if gpu else 30,
        "startup_minutes": 10 if gpu else 5,
        "metrics_namespaces": serving.metrics_namespaces,
        "metrics_port": METRICS_PORT,
        "pull_secrets": cfg.image.pull_secrets,
    }
    for template in ("kustomization", "serviceaccount", "deployment", "service", "networkpolicy"):
        path = f"base/{template}.yaml"
        yield RenderedFile(f"{DEPLOY}/{path}", render_template("manifests", f"{path}.j2", **context))
    settings = settings_json(runtime_settings_dict(project))
    yield RenderedFile(f"{DEPLOY}/base/model-settings.json", settings)


def _components(project: Project) -> Iterator[tuple[str, dict[str, Any]]]:
    """(trait, template context) of each component this model uses."""
    cfg = project.config
    serving = cfg.serving
    if serving.device == "gpu":
        gpu = {"node_selector": serving.node_selector, "tolerations": serving.tolerations, "gpus": serving.gpus}
        yield "gpu", gpu
    if any(t.highly_available for env in cfg.environments for t in targets_of(cfg, env)):
        yield "high-availability", {}
    # Review apps share one namespace and selector labels: a ServiceMonitor there would scrape them all.
    if any(cfg.monitoring_of(env).enabled for env in cfg.environments):
        yield "monitoring", {"dashboard_json": dashboard_json(cfg.name)}


_COMPONENT_FILES = {
    "gpu": ("kustomization", "gpu"),
    "high-availability": ("kustomization", "poddisruptionbudget", "spread"),
    "monitoring": ("kustomization", "servicemonitor", "dashboard"),
}


def _overlay(project: Project, env: str, traits: list[str]) -> Iterator[RenderedFile]:
    cfg = project.config
    tgt = target(cfg, env, overlay=True)
    folder = f"{DEPLOY}/overlays/{env}"
    # With instances this overlay is what they share; each adds its own exposure, scaling and replicas.
    instances = instance_targets(cfg, env) if env != REVIEW else []
    for inst in instances:
        yield from instance_files(
            cfg,
            inst,
            exposure=_instance_exposure(cfg, inst),
            autoscaling=_autoscaling_yaml(inst),
            highly_available=inst.highly_available,
        )
    resources = []
    # A review app's host is known only at build time (mlgit.manifests.build adds its exposure).
    exposure = grpc = None
    if tgt.exposure.kind != "none" and env != REVIEW and not instances:
        resources.append("exposure.yaml")
        exposure = exposure_yaml(cfg, tgt)
        yield RenderedFile(f"{folder}/exposure.yaml", exposure)
        if cfg.serving.grpc_port is not None:
            resources.append("grpc-exposure.yaml")
            grpc = grpc_exposure_yaml(cfg, tgt, exposure_annotations(cfg, tgt))
            yield RenderedFile(f"{folder}/grpc-exposure.yaml", grpc)
    monitored = env != REVIEW and cfg.monitoring_of(env).enabled
    # The rules name the environment's one Deployment: instances have none by that name (docs/instances.md).
    if monitored and not instances:
        resources.append("alerts.yaml")
        yield RenderedFile(f"{folder}/alerts.yaml", prometheus_rule(cfg, env))
    autoscaling = None if instances else _autoscaling_yaml(tgt)
    if autoscaling is not None:
        resources.append("autoscaling.yaml")
        yield RenderedFile(f"{folder}/autoscaling.yaml", autoscaling)
    # One patch file per concern: (file, template under overlays/env/, its context).
    concerns: list[tuple[str, str, dict[str, Any]]] = [
        ("auth.yaml", "auth.yaml.j2", {"auth": cfg.auth_of(env), "keys_dir": API_KEYS_DIR})
    ]
    monitoring = cfg.monitoring_of(env)
    if monitoring.tracing is not None:  # off: no patch, and the runtime imports no OpenTelemetry at all
        concerns.append(("tracing.yaml", "tracing.yaml.j2", {"tracing": monitoring.tracing}))
    if monitoring.payload_logging is not None:
        concerns.append(("payload-logging.yaml", "payload-logging.yaml.j2", {"payload": monitoring.payload_logging}))
    served = cfg.environments[env].versions if env != REVIEW else None
    if served is not None:
        concerns.append(("versions.yaml", "versions.yaml.j2", {"versions": served}))
    for extra, variable in EXTRA_SWITCHES.items():
        context = {
            "extra": extra,
            "paths": " and ".join(p.path for p in EXTRA_PATHS[extra]),
            "variable": variable,
            "enabled": extra in (tgt.exposure.public or []),
        }
        concerns.append((f"{extra}.yaml", "public-extra.yaml.j2", context))
    patches: dict[str, str] = {}
    for path, template, context in concerns:
        patches[path] = render_template("manifests", f"overlays/env/{template}", name=tgt.name, **context)
    patches.update(overlay_patches(tgt))
    both_deployments: dict[str, dict[str, str]] = {}
    if tgt.canary is not None:
        resources.append(CANARY_OBJECTS)
        base = {Path(f.path).name: f.content for f in _base(project)}
        yield RenderedFile(f"{folder}/{CANARY_OBJECTS}", canary_objects(tgt, base, exposure, grpc))
        both_deployments, canary_only = canary_patches(tgt, patches)
        patches.update(canary_only)
    for path, text in patches.items():
        yield RenderedFile(f"{folder}/{path}", text)
    components = ["../../components/gpu"] if "gpu" in traits else []
    if tgt.highly_available and not instances:
        components.append("../../components/high-availability")
    if monitored:
        components.append("../../components/monitoring")
    kustomization = render_template(
        "manifests",
        "overlays/env/kustomization.yaml.j2",
        review=env == REVIEW,
        name=tgt.name,
        namespace=tgt.namespace,
        resources=resources,
        components=components,
        patches=list(patches),
        both_deployments=both_deployments,
        replicas=None if tgt.autoscaling or instances else tgt.replicas,
        instance=tgt.instance,
        labels=tgt.labels,
        canary=replacements_context(tgt, exposure is not None, grpc is not None) if tgt.canary is not None else None,
    )
    yield RenderedFile(f"{folder}/kustomization.yaml", kustomization)
    yield pin_file(project.root, tgt, cfg.image.repository, f"{folder}/image/kustomization.yaml")


def _autoscaling_yaml(tgt: Target) -> str | None:
    """The HorizontalPodAutoscaler of `tgt`, None when it runs fixed replicas."""
    if tgt.autoscaling is None:
        return None
    return render_template(
        "manifests",
        "overlays/env/autoscaling.yaml.j2",
        name=tgt.name,
        autoscaling=tgt.autoscaling,
        in_flight_metric=IN_FLIGHT_METRIC,
    )


def _instance_exposure(cfg: MlgitConfig, inst: Target) -> str | None:
    """An instance's exposure.yaml: its route, and its gRPC route when the server speaks gRPC; None: none."""
    if inst.exposure.kind == "none":
        return None
    text = exposure_yaml(cfg, inst)
    if cfg.serving.grpc_port is not None:
        text += "---\n" + grpc_exposure_yaml(cfg, inst, exposure_annotations(cfg, inst))
    return text


def render_manifests(project: Project) -> Iterator[RenderedFile]:
    """Every file under deploy/ (the Renderer registered in mlgit.render)."""
    yield from _base(project)
    traits = []
    # Components are shared by every environment: with a canary in any, their patches target both Deployments
    # (the stable alone where there is no canary) and the ServiceMonitor labels series by track.
    canaries = any(env.canary is not None for env in project.config.environments.values())
    shared = {
        "both_deployments": deployment_target(project.config.name) if canaries else None,
        "track_label": TRACK_LABEL if canaries else None,
    }
    for trait, context in _components(project):
        traits.append(trait)
        for template in _COMPONENT_FILES[trait]:
            path = f"components/{trait}/{template}.yaml"
            text = render_template("manifests", f"{path}.j2", name=project.config.name, **shared, **context)
            yield RenderedFile(f"{DEPLOY}/{path}", text)
    for env in known_targets(project.config):
        yield from _overlay(project, env, traits)
    yield from wildcard_files(project.config, DEPLOY)
