"""Instances and versions in the built manifests (case linear-instances): each instance is its own set of objects,
named, labelled and selected apart from its siblings, on the environment's one image pin."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlgit import render
from mlgit.config.instances import OBJECT_SUFFIXES
from mlgit.config.load import load_project
from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.manifests.build import build_env
from mlgit.manifests.pins import write_pin
from mlgit.targets import targets_of

CASE = "linear-instances"
SERVING_CERT = "service.beta.openshift.io/serving-cert-secret-name"
IMAGE = "registry.example.com/ml/linear@sha256:" + "2" * 64


def _of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def _env(deployment: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_each_instance_is_its_own_set_of_objects(case_repo: Callable[[str], Path]) -> None:
    project = load_project(case_repo(CASE))
    everything = build_env(project, "prod")
    seen: set[tuple[str, str]] = set()
    for tgt in targets_of(project.config, "prod"):
        objects = build_env(project, "prod", instance=tgt.instance_name)
        labels = {"app.kubernetes.io/instance": tgt.instance, **tgt.labels}
        for obj in objects:
            # <name>-<instance>, or for the generated and shared parts <name>-<part>-<instance>[-<hash>].
            assert tgt.instance_name in obj["metadata"]["name"].split("-")[1:], obj["metadata"]["name"]
            assert obj["metadata"]["namespace"] == tgt.namespace
            assert {k: v for k, v in obj["metadata"]["labels"].items() if k != "grafana_dashboard"} == labels, obj
            key = (obj["kind"], obj["metadata"]["name"])
            assert key not in seen, f"{key} is in two instances"
            seen.add(key)
        selector = {"app.kubernetes.io/name": "linear", "app.kubernetes.io/instance": tgt.instance}
        (deployment,) = _of_kind(objects, "Deployment")
        assert deployment["spec"]["selector"]["matchLabels"] == selector
        assert deployment["spec"]["template"]["metadata"]["labels"] == labels
        (service,) = _of_kind(objects, "Service")
        assert service["spec"]["selector"] == selector
        for policy in _of_kind(objects, "NetworkPolicy") + _of_kind(objects, "PodDisruptionBudget"):
            assert policy["spec"].get("podSelector", policy["spec"].get("selector"))["matchLabels"] == selector
        (monitor,) = _of_kind(objects, "ServiceMonitor")
        assert monitor["spec"]["selector"]["matchLabels"] == selector
        (ingress,) = _of_kind(objects, "Ingress")
        assert ingress["spec"]["rules"][0]["host"] == tgt.host
        assert ingress["spec"]["tls"][0]["secretName"] == f"{tgt.name}-tls"
        assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == tgt.name
    assert len(everything) == len(seen)  # the environment is its instances, nothing besides


def test_instances_scale_and_size_apart(case_repo: Callable[[str], Path]) -> None:
    project = load_project(case_repo(CASE))
    eu, us = (build_env(project, "prod", instance=name) for name in ("eu", "us"))
    (hpa,) = _of_kind(eu, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "linear-eu" and hpa["spec"]["minReplicas"] == 2
    assert "replicas" not in _of_kind(eu, "Deployment")[0]["spec"]  # the HPA owns it
    assert not _of_kind(us, "HorizontalPodAutoscaler")
    (deployment,) = _of_kind(us, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
    assert _of_kind(eu, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["resources"] != resources


def test_one_pin_moves_every_instance(case_repo: Callable[[str], Path], tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(case_repo(CASE), root)
    write_pin(root, "prod", IMAGE)
    project = load_project(root)
    images = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
        for d in _of_kind(build_env(project, "prod"), "Deployment")
    }
    assert images == {"linear-eu": IMAGE, "linear-us": IMAGE}
    other = IMAGE.replace("2" * 64, "3" * 64)
    (deployment,) = _of_kind(build_env(project, "prod", image=other, instance="us"), "Deployment")
    assert deployment["metadata"]["name"] == "linear-us"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == other


def test_an_environment_serves_the_versions_it_names(case_repo: Callable[[str], Path]) -> None:
    project = load_project(case_repo(CASE))
    (staging,) = _of_kind(build_env(project, "staging"), "Deployment")
    assert _env(staging)["MLGIT_SERVING_VERSIONS"] == "1"
    (dev,) = _of_kind(build_env(project, "dev"), "Deployment")
    assert "MLGIT_SERVING_VERSIONS" not in _env(dev)  # every version the image holds
    dockerfile = (project.root / "Dockerfile").read_text()
    assert 'COPY ["model/v2/model.onnx", "/models/linear/2/model.onnx"]' in dockerfile
    assert "ENV MLGIT_SERVING_DEFAULT_VERSION=1" in dockerfile


def _secrets_named(obj: dict[str, Any]) -> list[str]:
    """The Secrets an object asks cert-manager or OpenShift to make (Ingress TLS, Certificate, serving cert), and
    those a Deployment's pods mount."""
    spec = obj.get("spec") or {}
    annotations = obj["metadata"].get("annotations") or {}
    volumes = spec.get("template", {}).get("spec", {}).get("volumes") or [] if obj["kind"] == "Deployment" else []
    return [
        *(v["secret"]["secretName"] for v in volumes if "secret" in v),
        *(t["secretName"] for t in spec.get("tls") or [] if obj["kind"] == "Ingress"),
        *([spec["secretName"]] if obj["kind"] == "Certificate" else []),
        *([annotations[SERVING_CERT]] if SERVING_CERT in annotations else []),
    ]


GATEWAY = {"kind": "gateway", "gateway": {"name": "public", "namespace": "gateway-system"}}
# Every object name an instance's exposure can bring: gRPC over an Ingress (prod) and over a Gateway (dev); the
# serving certificate of a re-encrypting Route (staging; a Route cannot carry gRPC, so without grpc_port).
EXPOSURES = {
    "grpc": {"serving": {"grpc_port": 9000}, "environments": {"dev": {"exposure": GATEWAY, "instances": {"eu": {}}}}},
    "route": {"environments": {"staging": {"exposure": {"kind": "route", "route": {"termination": "reencrypt"}},
                                           "instances": {"eu": {}}}}},
}  # fmt: skip


def test_instance_object_names_are_the_ones_the_config_keeps_apart(
    case_repo: Callable[[str], Path], tmp_path: Path
) -> None:
    """config/instances.py refuses instances whose object names could meet (eu and eu-exposure) by OBJECT_SUFFIXES:
    each instance's objects are <name>-<instance>[-<suffix>], or its ConfigMaps <name>-<part>-<instance>[-<hash>]."""
    suffixes = set()
    for variant, changes in EXPOSURES.items():
        root = tmp_path / variant
        shutil.copytree(case_repo(CASE), root)
        doc = read_yaml(root / "mlgit.yaml")
        doc.setdefault("serving", {}).update(changes.get("serving", {}))
        for env, settings in changes["environments"].items():
            doc["environments"][env].update(settings)
        (root / "mlgit.yaml").write_text(dump_yaml(doc), encoding="utf-8")
        project = load_project(root, warn=False)
        render.render(project)
        for env in project.config.environments:
            for tgt in targets_of(project.config, env):
                if tgt.instance_name is None:
                    continue
                own = f"{tgt.model}-{tgt.instance_name}"
                for obj in build_env(project, env, instance=tgt.instance_name):
                    name = obj["metadata"]["name"]
                    if obj["kind"] == "ConfigMap":
                        part = rf"{tgt.model}-[a-z]+-{tgt.instance_name}(-[a-z0-9]{{10}})?"
                        assert re.fullmatch(part, name), (env, name)
                        continue
                    # The TLS Secrets the cluster makes and the pods mount, too, but for the environment's api keys.
                    for named in [name, *(n for n in _secrets_named(obj) if n != f"{tgt.model}-api-keys")]:
                        assert named == own or named.removeprefix(own + "-") in OBJECT_SUFFIXES, (env, obj, named)
                        suffixes.add(named.removeprefix(own).removeprefix("-"))
    # The variants reach the suffixes an instance can have today (canary and alerts: not with instances yet).
    assert suffixes == {"", "exposure", "grpc", "grpc-exposure", "grpc-tls", "tls", "serving-cert"}, suffixes
