"""Model repositories the manifest tests render and build: every shipped example plus variants of the
linear model covering what the examples do not (GPU with autoscaling on in-flight requests and
monitoring overridden per environment; Gateway API with a namespaced Issuer, per-environment exposure and
TLS overrides; gRPC exposed through an Ingress and a GRPCRoute)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlgit import render
from mlgit.config.load import CONFIG_FILE, load_project
from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.scaffold import InitOptions, init_repository
from tests.conftest import EXAMPLES
from tests.onnx_models import write_linear_model

SLUG = "feat-x"
DIGEST = "sha256:" + "1" * 64

VARIANTS: dict[str, dict[str, Any]] = {
    "linear": {},
    "linear-gpu": {
        "serving": {
            "device": "gpu",
            "gpus": 2,
            "node_selector": {"nvidia.com/gpu.present": "true"},
            "metrics_namespaces": ["monitoring", "observability"],
        },
        "monitoring": {"enabled": True, "objectives": {"latency_p99_ms": 500, "error_rate": 0.05}},
        "environments": {
            "dev": {"monitoring": {"enabled": False}},
            "staging": {"replicas": 2},
            "prod": {
                "autoscaling": {"enabled": True, "min_replicas": 2, "max_replicas": 6, "target_in_flight": 8},
                "monitoring": {"objectives": {"latency_p99_ms": 100}, "drift": {"threshold": 0.3}},
            },
        },
    },
    "linear-gateway": {
        "exposure": {
            "kind": "gateway",
            "gateway": {"name": "public", "namespace": "gateway-system"},
            "annotations": {"example.com/owner": "ml-team"},
            "timeout_seconds": 300,
        },
        "tls": {"issuer": "acme", "issuer_kind": "Issuer"},
        "monitoring": {
            "tracing": {"otlp_endpoint": "http://otel-collector.observability:4318/v1/traces"},
            "payload_logging": {"url": "https://payloads.example.com/events", "sample_rate": 0.1, "redact": ["input"]},
        },
        "environments": {
            "dev": {"exposure": {"kind": "none"}, "monitoring": {"tracing": None}},
            "staging": {"tls": {"enabled": False}, "monitoring": {"payload_logging": None}},
            "prod": {
                "replicas": 3,
                "autoscaling": {"enabled": False},
                "monitoring": {"tracing": {"otlp_endpoint": "https://otel.example.com/v1/traces", "sample_rate": 0.05}},
            },
        },
        "review": {"enabled": False},
    },
    "linear-openshift": {
        "platform": "openshift",
        "exposure": {"kind": "route", "route": {"termination": "reencrypt"}},
        "environments": {
            "dev": {"exposure": {"kind": "route"}},
            "prod": {},
            # One environment on a plain Kubernetes cluster, exposed by an Ingress.
            "staging": {"platform": "kubernetes", "exposure": {"kind": "ingress"}},
        },
        "review": {"tls": {"wildcard": True}},
    },
    # gRPC beside HTTP: an Ingress <name>-grpc in dev and prod, a GRPCRoute under grpc.<host> in staging; review
    # apps get the port but no gRPC exposure.
    "linear-grpc": {
        # auto: two workers under the 2-CPU limit, each with max_request_bytes' memory (3Gi, not the default 2Gi).
        "serving": {"grpc_port": 9000, "workers": "auto", "resources": {"limits": {"cpu": "2", "memory": "3Gi"}}},
        "environments": {
            "dev": {},
            "staging": {"exposure": {"kind": "gateway", "gateway": {"name": "public", "namespace": "gateway-system"}}},
            "prod": {},
        },
    },
    # Named instances (prod: two, one with its own host, replicas and resources) and a second model version
    # in the image, which staging does not serve (docs/instances.md).
    "linear-instances": {
        "model": {"versions": [{"version": "2", "path": "model/v2/model.onnx"}]},
        "monitoring": {"enabled": True},
        "environments": {
            "dev": {},
            "staging": {"versions": ["1"]},
            "prod": {
                "instances": {
                    "eu": {},
                    "us": {
                        "host": "us.linear.models.example.com",
                        "replicas": 3,
                        "autoscaling": {"enabled": False},
                        "resources": {
                            "requests": {"cpu": "1", "memory": "1Gi"},
                            "limits": {"cpu": "2", "memory": "2Gi"},
                        },
                    },
                }
            },
        },
    },
    # Canaries (docs/canary.md): split by an ingress-nginx canary Ingress in dev, by HTTPRoute weights with
    # mirrored requests in staging, by Route alternateBackends in prod (re-encrypting, autoscaled: the HPA scales the
    # stable alone).
    "linear-canary": {
        "monitoring": {"enabled": True},
        "environments": {
            "dev": {"canary": {}},
            "staging": {
                "exposure": {"kind": "gateway", "gateway": {"name": "public", "namespace": "gateway-system"}},
                "canary": {"weight": 20, "mirror": True},
            },
            "prod": {
                "platform": "openshift",
                "exposure": {"kind": "route", "route": {"termination": "reencrypt"}, "public": ["docs"]},
                "canary": {"replicas": 2},
            },
        },
        "review": {"enabled": False},
    },
    # gRPC in canary environments (docs/canary.md): a second canary Ingress <name>-grpc-canary in dev, GRPCRoute
    # weights in staging, both from the same pin-file split as HTTP.
    "linear-canary-grpc": {
        "serving": {"grpc_port": 9000},
        "environments": {
            "dev": {"canary": {}},
            "staging": {
                "exposure": {"kind": "gateway", "gateway": {"name": "public", "namespace": "gateway-system"}},
                "canary": {"weight": 20},
            },
            "prod": {},
        },
        "review": {"enabled": False},
    },
}
CASES = [*VARIANTS, *EXAMPLES]
# Files a variant's mlgit.yaml names besides the scaffold's: path -> the scaffold file it is a copy of.
EXTRA_FILES = {"linear-instances": {"model/v2/model.onnx": "model/model.onnx"}}


@dataclass(frozen=True)
class Built:
    yaml: dict[str, str]
    """environment -> built YAML, as the pipeline builds it (review: with a slug and an image)."""
    warnings: dict[str, str]
    """overlay -> what `kubectl kustomize` of deploy/overlays/<overlay> printed on stderr."""


def make_case(case: str, parent: Path) -> Path:
    """Create the model repository of `case` under `parent`, rendered."""
    if case in EXAMPLES:
        return init_repository(InitOptions(target=parent / case, example=case))
    model = write_linear_model(parent / "linear.onnx")
    root = init_repository(InitOptions(target=parent / case, name="linear", model=model))
    for path, source in EXTRA_FILES.get(case, {}).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / source, root / path)
    doc = read_yaml(root / CONFIG_FILE)
    doc.update(VARIANTS[case])
    (root / CONFIG_FILE).write_text(dump_yaml(doc), encoding="utf-8")
    render.render(load_project(root), prune=True)  # the variants replace the scaffold's environments
    return root


def build_args(root: Path, env: str) -> dict[str, str]:
    """What the pipeline passes for `env`: review apps get a slug and the merge request's image."""
    if env != "review":
        return {}
    return {"slug": SLUG, "image": f"{load_project(root).config.image.repository}@{DIGEST}"}
