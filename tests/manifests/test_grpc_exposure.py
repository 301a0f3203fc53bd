"""gRPC (serving.grpc_port) and worker processes (serving.workers) from mlgit.yaml to the built objects: the pod's
port and environment, the Service's h2c port, the exposure beside HTTP (Ingress or GRPCRoute), the policies, and
the settings mlgit refuses."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from mlgit.config.load import load_project
from mlgit.main import app
from mlgit.policy.check import run_check
from mlgit.policy.inputs import environment_names
from mlgit.policy.settings import PlatformSettings
from tests.manifests.cases import DIGEST, Built

GRPC = "linear-grpc"


def _objects(built: Built, env: str) -> dict[tuple[str, str], dict[str, Any]]:
    documents = YAML(typ="safe", pure=True).load_all(built.yaml[env])
    return {(d["kind"], d["metadata"]["name"]): d for d in documents if d}


def _server(objects: dict[tuple[str, str], dict[str, Any]], name: str = "linear") -> dict[str, Any]:
    (container,) = objects["Deployment", name]["spec"]["template"]["spec"]["containers"]
    return container


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_grpc_and_workers_reach_the_pod(built: Callable[[str], Built]) -> None:
    objects = _objects(built(GRPC), "prod")
    server = _server(objects)
    assert {"name": "grpc", "containerPort": 9000, "protocol": "TCP"} in server["ports"]
    env = _env(server)
    assert env["MLGIT_SERVING_GRPC_PORT"] == "9000"
    assert env["MLGIT_SERVING_WORKERS"] == "auto"
    # The probes stay HTTP: the policies require them, and gRPC health is not what the kubelet asks.
    assert {server[p]["httpGet"]["port"] for p in ("startupProbe", "readinessProbe", "livenessProbe")} == {"http"}
    ports = {p["name"]: p for p in objects["Service", "linear"]["spec"]["ports"]}
    assert ports["grpc"] == {
        "name": "grpc", "port": 9000, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "kubernetes.io/h2c",
    }  # fmt: skip


def test_without_grpc_port_nothing_of_it_is_rendered(built: Callable[[str], Built]) -> None:
    objects = _objects(built("linear"), "prod")
    server = _server(objects)
    assert [p["name"] for p in server["ports"]] == ["http", "metrics"]
    assert not {"MLGIT_SERVING_GRPC_PORT", "MLGIT_SERVING_WORKERS"} & set(_env(server))
    assert [p["name"] for p in objects["Service", "linear"]["spec"]["ports"]] == ["http", "metrics"]
    assert not [key for key in objects if "grpc" in key[1] or key[0] == "GRPCRoute"]


def test_ingress_exposes_grpc_on_the_http_host_and_certificate(built: Callable[[str], Built]) -> None:
    objects = _objects(built(GRPC), "prod")
    http, grpc = objects["Ingress", "linear"], objects["Ingress", "linear-grpc"]
    assert grpc["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"
    # Only the HTTP Ingress asks cert-manager for the Secret; the gRPC one shares it.
    assert "cert-manager.io/cluster-issuer" in http["metadata"]["annotations"]
    assert not [k for k in grpc["metadata"]["annotations"] if k.startswith("cert-manager.io/")]
    assert grpc["spec"]["tls"] == http["spec"]["tls"]
    (rule,) = grpc["spec"]["rules"]
    assert rule["host"] == http["spec"]["rules"][0]["host"] == "linear.models.example.com"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/inference.GRPCInferenceService"
    assert path["backend"]["service"] == {"name": "linear", "port": {"name": "grpc"}}
    admitted = objects["NetworkPolicy", "linear-grpc-exposure"]["spec"]["ingress"]
    assert admitted == [{
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
        "ports": [{"port": "grpc", "protocol": "TCP"}],
    }]  # fmt: skip


def test_gateway_exposes_grpc_with_a_grpcroute_under_its_own_host(built: Callable[[str], Built]) -> None:
    objects = _objects(built(GRPC), "staging")
    http, grpc = objects["HTTPRoute", "linear"], objects["GRPCRoute", "linear"]
    assert grpc["spec"]["parentRefs"] == http["spec"]["parentRefs"]
    # An HTTPRoute and a GRPCRoute sharing a hostname on one listener conflict (one is rejected).
    assert grpc["spec"]["hostnames"] == [f"grpc.{http['spec']['hostnames'][0]}"]
    (rule,) = grpc["spec"]["rules"]
    assert rule["matches"] == [{"method": {"type": "Exact", "service": "inference.GRPCInferenceService"}}]
    assert rule["backendRefs"] == [{"name": "linear", "port": 9000}]
    certificate = objects["Certificate", "linear-grpc"]["spec"]
    assert certificate["dnsNames"] == grpc["spec"]["hostnames"]
    grant = objects["ReferenceGrant", "linear-grpc-tls"]["spec"]
    assert grant["to"] == [{"group": "", "kind": "Secret", "name": certificate["secretName"]}]


def test_review_apps_get_the_port_but_no_grpc_exposure(built: Callable[[str], Built]) -> None:
    objects = _objects(built(GRPC), "review")
    assert "MLGIT_SERVING_GRPC_PORT" in _env(_server(objects, "linear-feat-x"))
    assert not [key for key in objects if key[0] in ("Ingress", "GRPCRoute") and "grpc" in str(objects[key]).lower()]


def test_the_grpc_case_passes_every_policy(case_repo: Callable[[str], Path]) -> None:
    project = load_project(case_repo(GRPC))
    result = run_check(
        project, environment_names(project, None), pipeline=False, today=dt.date.today(),
        platform=PlatformSettings(), image=f"{project.config.image.repository}@{DIGEST}",
    )  # fmt: skip
    assert [f.message for f in result.findings] == []


ROUTE = "exposure: {kind: route}\n"
# (id, what to add under `serving:` in mlgit.yaml, what to append at the top level, the error)
REFUSED = [
    ("grpc-port-is-http-port", "grpc_port: 8080", "", r"serving\.grpc_port: 8080 is also serving\.port"),
    ("grpc-port-is-metrics-port", "grpc_port: 9090", "", r"serving\.grpc_port: 9090 is also the metrics port"),
    ("grpc-port-privileged", "grpc_port: 443", "", r"serving\.grpc_port: Input should be greater than or equal to 10"),
    ("workers-zero", "workers: 0", "", r"serving\.workers: 0 is not a number of processes: give a whole number >= 1"),
    ("workers-word", "workers: many", "", r"serving\.workers: 'many' is not a number of processes"),
    ("grpc-through-route", "grpc_port: 9000", ROUTE,
     r"environments\.dev\.exposure\.kind: route cannot carry serving\.grpc_port: an OpenShift edge or reencrypt Route"),
    ("grpc-ingress-without-tls", "grpc_port: 9000", "environments:\n  dev: {tls: {enabled: false}}\n",
     r"environments\.dev\.tls\.enabled: false, but serving\.grpc_port is set and ingress-nginx serves HTTP/2"),
]  # fmt: skip


@pytest.mark.parametrize(("serving", "top", "pattern"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_settings_that_cannot_work_are_refused_at_the_field(
    model_repo: Path, serving: str, top: str, pattern: str
) -> None:
    config = model_repo / "mlgit.yaml"
    text = config.read_text(encoding="utf-8")
    assert "  device: cpu\n" in text
    config.write_text(text.replace("  device: cpu\n", f"  device: cpu\n  {serving}\n", 1) + top, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(model_repo)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert re.search(pattern, result.output), result.output
