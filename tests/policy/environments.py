"""Input documents of environments that satisfy every policy, to plant violations into.

They mirror what mlgit's manifests renderer produces (docs/contracts.md), written out by hand so
that the policies are tested independently of the renderer.
"""

from __future__ import annotations

import copy
from typing import Any

DIGEST = "sha256:" + "ab" * 32
MODEL = "iris"


def context(environment: str = "prod", tier: str = "production", device: str = "cpu") -> dict[str, Any]:
    return {
        "environment": environment,
        "tier": tier,
        "namespace": f"{MODEL}-{environment}",
        "allowed_domains": ["example.com"],
        "allowed_registries": ["registry.example.com"],
        "allowed_issuers": ["letsencrypt-prod"],
        "tiers": {"dev": "development", "staging": "staging", "prod": "production"},
        "model": {
            "name": MODEL,
            "device": device,
            "gpus": 1 if device == "gpu" else 0,
            "max_delay_ms": 2.0,
            "drain_seconds": 20,
            "max_request_bytes": 67108864,
            "largest_input_bytes": 512,
        },
    }


def _labels(environment: str, component: str = "server") -> dict[str, str]:
    return {
        "app.kubernetes.io/name": MODEL,
        "app.kubernetes.io/instance": f"{MODEL}-{environment}",
        "app.kubernetes.io/version": "1",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": MODEL,
        "app.kubernetes.io/managed-by": "mlgit",
        "mlgit.dev/environment": environment,
        "mlgit.dev/model": MODEL,
    }


def _meta(name: str, environment: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": f"{MODEL}-{environment}", "labels": _labels(environment), **extra}


def _probe(path: str, **extra: Any) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}, "timeoutSeconds": 2, **extra}


def deployment(environment: str, device: str = "cpu") -> dict[str, Any]:
    selector = {"app.kubernetes.io/name": MODEL, "app.kubernetes.io/instance": f"{MODEL}-{environment}"}
    limits: dict[str, Any] = {"cpu": "2", "memory": "2Gi"}
    pod: dict[str, Any] = {
        "serviceAccountName": MODEL,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001},
        "containers": [
            {
                "name": "server",
                "image": f"registry.example.com/team/{MODEL}@{DIGEST}",
                "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
                "env": [
                    {"name": "MLGIT_SERVING_DRAIN_SECONDS", "value": "20"},
                    {"name": "MLGIT_SERVING_AUTH_MODE", "value": "api-key"},
                ],
                "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": limits},
                "startupProbe": _probe("/v2/health/ready", failureThreshold=30),
                "readinessProbe": _probe("/v2/health/ready"),
                "livenessProbe": _probe("/v2/health/live"),
                "securityContext": {
                    "runAsNonRoot": True,
                    "readOnlyRootFilesystem": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if device == "gpu":
        limits["nvidia.com/gpu"] = 1
        pod["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(MODEL, environment),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": _labels(environment)}, "spec": pod},
        },
    }


def environment(environment: str = "prod", tier: str = "production", device: str = "cpu") -> dict[str, Any]:
    """A complete input document for one environment that passes every policy."""
    selector = {"app.kubernetes.io/name": MODEL, "app.kubernetes.io/instance": f"{MODEL}-{environment}"}
    host = f"{MODEL}.example.com"
    resources = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(MODEL, environment)},
        deployment(environment, device),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(MODEL, environment),
            "spec": {
                "selector": selector,
                "ports": [
                    {"name": "http", "port": 80, "targetPort": "http"},
                    {"name": "metrics", "port": 9090, "targetPort": "metrics"},
                ],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": _meta(
                MODEL,
                environment,
                annotations={
                    "cert-manager.io/cluster-issuer": "letsencrypt-prod",
                    "nginx.ingress.kubernetes.io/proxy-body-size": "64m",
                    "nginx.ingress.kubernetes.io/proxy-read-timeout": "60",
                },
            ),
            "spec": {
                "ingressClassName": "nginx",
                "tls": [{"hosts": [host], "secretName": f"{MODEL}-tls"}],
                "rules": [
                    {
                        "host": host,
                        "http": {
                            "paths": [
                                {
                                    "path": "/v2",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": MODEL, "port": {"name": "http"}}},
                                }
                            ]
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": _meta(MODEL, environment),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": MODEL},
                "minReplicas": 2,
                "maxReplicas": 4,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                    }
                ],
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _meta(MODEL, environment),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(MODEL, environment),
            "spec": {
                "podSelector": {"matchLabels": selector},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
                        ],
                        "ports": [{"port": "http"}],
                    },
                    {
                        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                        "ports": [{"port": "metrics"}],
                    },
                ],
            },
        },
    ]
    return {"context": context(environment, tier, device), "resources": copy.deepcopy(resources)}


def pipeline() -> dict[str, Any]:
    """A pipeline input document that passes every pipeline policy."""
    on_default = "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
    jobs: dict[str, Any] = {"stages": ["deploy"]}
    for env, tier in (("staging", "staging"), ("prod", "production")):
        jobs[f"deploy-{env}"] = {
            "stage": "deploy",
            "script": [f"mlgit deploy --env {env}"],
            "environment": {"name": env, "on_stop": f"destroy-{env}", "deployment_tier": tier},
            "rules": [{"if": on_default, "when": "manual"}],
        }
        jobs[f"destroy-{env}"] = {
            "stage": "deploy",
            "script": [f"mlgit destroy --env {env}"],
            "environment": {"name": env, "action": "stop"},
            "rules": [{"if": on_default, "when": "manual"}],
        }
    jobs["deploy-review"] = {
        "stage": "deploy",
        "script": ["mlgit deploy --env review"],
        "environment": {
            "name": "review/$CI_COMMIT_REF_SLUG",
            "on_stop": "destroy-review",
            "auto_stop_in": "3 days",
            "deployment_tier": "development",
        },
        "rules": [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}],
    }
    jobs["destroy-review"] = {
        "stage": "deploy",
        "script": ["mlgit destroy --env review"],
        "environment": {"name": "review/$CI_COMMIT_REF_SLUG", "action": "stop"},
        "rules": [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"', "when": "manual"}],
    }
    # As mlgit builds it: no `model`, whose facts come from an environment's manifests.
    shared = {k: v for k, v in context("pipeline", "other").items() if k != "model"}
    return {"context": shared, "pipeline": jobs}
