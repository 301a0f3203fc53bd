"""Built manifests: golden files, strict schemas (Kubernetes 1.30-1.35 and CRDs), labels, review apps."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from mlgit.config.load import load_project
from mlgit.errors import MlgitError
from mlgit.manifests.build import build_env, build_env_yaml
from mlgit.manifests.kustomize import KUBECTL_ENV
from mlgit.manifests.render import DEPLOY
from tests.fixtures_integration import unavailable
from tests.golden import GoldenFiles
from tests.manifests.cases import CASES, DIGEST, SLUG, Built
from tests.manifests.schemas import (
    CRDS_COMMAND,
    CRDS_ENV,
    KUBERNETES_VERSIONS,
    CrdSchemas,
    builtin_errors,
    is_builtin,
    schema_errors,
)

SELECTOR_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance")


def _objects(text: str) -> list[dict[str, Any]]:
    return [d for d in YAML(typ="safe", pure=True).load_all(text) if d]


def _of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


@pytest.mark.parametrize("case", CASES)
def test_built_output_matches_golden(case: str, built: Callable[[str], Built], golden: GoldenFiles) -> None:
    golden.check(f"manifests/{case}/built", {f"{env}.yaml": text for env, text in built(case).yaml.items()})


@pytest.fixture(scope="session")
def crds() -> CrdSchemas:
    """The CRDs generated from cert-manager's, Gateway API's and prometheus-operator's Go API types."""
    directory = os.environ.get(CRDS_ENV)
    if not directory:
        unavailable(f"{CRDS_ENV} is not set: the CRD schemas are generated (with Go) by `{CRDS_COMMAND}`")
    try:
        return CrdSchemas(Path(directory))
    except OSError as error:
        unavailable(f"{CRDS_ENV}={directory} holds no usable CRDs ({error}): regenerate with `{CRDS_COMMAND}`")


def _built_objects(built: Built) -> list[tuple[str, dict[str, Any]]]:
    return [(env, obj) for env, text in built.yaml.items() for obj in _objects(text)]


@pytest.mark.parametrize("case", CASES)
def test_built_objects_validate_strictly(case: str, built: Callable[[str], Built]) -> None:
    """Built-in kinds, against kubernetes-validate's strict schemas (no Go needed)."""
    errors = [
        f"{env} (Kubernetes {version}): {error}"
        for env, obj in _built_objects(built(case))
        for version in KUBERNETES_VERSIONS
        if is_builtin(obj, version)
        for error in builtin_errors(obj, version)
    ]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("case", CASES)
def test_built_custom_resources_validate_against_the_generated_crds(
    case: str, built: Callable[[str], Built], crds: CrdSchemas
) -> None:
    errors = [
        f"{env} (Kubernetes {version}): {error}"
        for env, obj in _built_objects(built(case))
        for version in KUBERNETES_VERSIONS
        if not is_builtin(obj, version)
        for error in crds.errors(obj, version)
    ]
    assert not errors, "\n".join(errors)


def test_the_cases_render_every_custom_resource_kind(built: Callable[[str], Built], crds: CrdSchemas) -> None:
    """Without this, a renderer that stopped emitting a kind would leave its CRD check with nothing to do."""
    rendered = {(o["apiVersion"], o["kind"]) for case in CASES for _, o in _built_objects(built(case))}
    custom = {key for key in rendered if key in crds.kinds()}
    assert custom == {
        ("cert-manager.io/v1", "Certificate"),
        ("gateway.networking.k8s.io/v1", "GRPCRoute"),
        ("gateway.networking.k8s.io/v1", "HTTPRoute"),
        ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("route.openshift.io/v1", "Route"),
    }


def test_validation_catches_mistakes_in_builtin_kinds() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"typo": 1}}
    assert builtin_errors(service, "1.30.0")


def _rendered(built: Callable[[str], Built], case: str, env: str, kind: str) -> dict[str, Any]:
    (obj,) = _of_kind(_objects(built(case).yaml[env]), kind)
    return copy.deepcopy(obj)


DELETE = object()


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    """Sets obj[a][b]... for the dotted `path` (numbers index lists); DELETE removes the last key."""
    *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
    for part in parents:
        obj = obj[part]
    if value is DELETE:
        del obj[last]
    else:
        obj[last] = value


GATEWAY, GPU, OPENSHIFT = ("linear-gateway", "prod"), ("linear-gpu", "prod"), ("linear-openshift", "prod")
GRPC = ("linear-grpc", "staging")
# A mistake planted into an object mlgit renders, and where the error must point (None: at the planted field).
PLANTED: list[tuple[tuple[str, str], str, str, Any, str | None]] = [
    (GATEWAY, "Certificate", "spec.issuerRef", DELETE, "spec"),  # required
    (GATEWAY, "Certificate", "spec.privateKey", {"algorithm": "DSA"}, "spec.privateKey.algorithm"),  # enum
    (GATEWAY, "Certificate", "spec.dnsName", ["x.example.com"], "spec"),  # unknown field
    (GATEWAY, "Certificate", "metadata.label", {"a": "b"}, "metadata"),  # unknown ObjectMeta field
    (GATEWAY, "HTTPRoute", "spec.rules.0.matches.0.path.type", "Prefix", None),  # Ingress's word, not an enum value
    (GATEWAY, "HTTPRoute", "spec.rules.0.backendRefs.0.port", 70000, None),  # maximum
    (GATEWAY, "HTTPRoute", "spec.rules.0.timeouts.request", "5 minutes", None),  # pattern
    # retry exists in Gateway API's experimental channel only: the standard channel's CRD prunes it.
    (GATEWAY, "HTTPRoute", "spec.rules.0.retry", {"attempts": 2}, "spec.rules.0"),
    (GRPC, "GRPCRoute", "spec.rules.0.matches.0.method.type", "Prefix", None),  # enum: Exact or RegularExpression
    (GRPC, "GRPCRoute", "spec.rules.0.backendRefs.0.port", 0, None),  # minimum
    (GRPC, "GRPCRoute", "spec.rules.0.timeouts", {"request": "60s"}, "spec.rules.0"),  # HTTPRoute's, not GRPCRoute's
    (GATEWAY, "ReferenceGrant", "spec.to.0.kind", "", None),  # minLength
    (GATEWAY, "ReferenceGrant", "apiVersion", "gateway.networking.k8s.io/v1alpha2", ""),  # not served
    (GPU, "ServiceMonitor", "spec.endpoints.0.scheme", "ftp", None),  # enum
    (GPU, "ServiceMonitor", "spec.endpoints.0.interval", "30 seconds", None),  # pattern
    (GPU, "ServiceMonitor", "spec.endpoint", [], "spec"),  # unknown field
    (OPENSHIFT, "Route", "spec.tls.termination", "reencrypted", None),  # enum
    (OPENSHIFT, "Route", "spec.path", "v2", None),  # pattern: a path starts with /
    (OPENSHIFT, "Route", "spec.to.kind", "Deployment", None),  # enum
    (OPENSHIFT, "Route", "spec.to.name", DELETE, "spec.to"),  # required
    (OPENSHIFT, "Route", "spec.tls.insecureEdgeTerminationPolicy", "Allowed", None),  # enum
]


@pytest.mark.parametrize(
    ("case_env", "kind", "path", "value", "where"), PLANTED, ids=[f"{p[1]}-{p[2]}" for p in PLANTED]
)
def test_validation_catches_mistakes_planted_in_rendered_custom_resources(
    case_env: tuple[str, str], kind: str, path: str, value: Any, where: str | None,
    built: Callable[[str], Built], crds: CrdSchemas,
) -> None:  # fmt: skip
    obj = _rendered(built, *case_env, kind)
    assert not schema_errors(obj, "1.35.0", crds)  # as rendered
    _set(obj, path, value)
    errors = schema_errors(obj, "1.35.0", crds)
    expected = f"{kind}/{obj['metadata']['name']} {path if where is None else where}".rstrip()
    assert any(error.split(": ", 1)[0] == expected for error in errors), f"no error at {expected}: {errors}"


@pytest.mark.parametrize("case", CASES)
def test_overlays_build_without_warnings(
    case: str, case_repo: Callable[[str], Path], built: Callable[[str], Built]
) -> None:
    warnings = built(case).warnings
    assert sorted(warnings) == sorted(p.name for p in (case_repo(case) / DEPLOY / "overlays").iterdir())
    assert not any(warnings.values()), warnings


@pytest.mark.parametrize("case", CASES)
def test_every_object_carries_the_label_contract(
    case: str, case_repo: Callable[[str], Path], built: Callable[[str], Built]
) -> None:
    config = load_project(case_repo(case)).config
    for env, text in built(case).yaml.items():
        if env in config.environments and config.environments[env].instances:
            continue  # several Deployments, each with its own labels: tests/manifests/test_instances.py
        environment = f"review-{SLUG}" if env == "review" else env
        instance = f"{config.name}-review-{SLUG}" if env == "review" else f"{config.name}-{env}"
        expected = {
            "app.kubernetes.io/name": config.name,
            "app.kubernetes.io/instance": instance,
            "app.kubernetes.io/version": config.model.version,
            "app.kubernetes.io/component": "model-server",
            "app.kubernetes.io/part-of": config.name,
            "app.kubernetes.io/managed-by": "mlgit",
            "mlgit.dev/model": config.name,
            "mlgit.dev/environment": environment,
        }
        objects = _objects(text)
        # What every review app shares (review.tls.wildcard) is labelled for the review overlay, not for one app.
        shared = {**expected, "app.kubernetes.io/instance": f"{config.name}-review", "mlgit.dev/environment": "review"}
        for obj in objects:
            # The Grafana sidecar finds the dashboard by a label of its own.
            labels = {k: v for k, v in obj["metadata"]["labels"].items() if k != "grafana_dashboard"}
            assert labels in ([expected, shared] if env == "review" else [expected]), (env, obj)
        selector = {k: expected[k] for k in SELECTOR_LABELS}
        # A canary's own selectors and track: tests/manifests/test_canary_render.py; its stable pods say "stable".
        canary = env in config.environments and config.environments[env].canary is not None
        track = {"mlgit.dev/track": "stable"} if canary else {}
        stable = [o for o in objects if not o["metadata"]["name"].startswith(f"{config.name}-canary")]
        (deployment,) = _of_kind(stable, "Deployment")
        assert deployment["spec"]["selector"]["matchLabels"] == selector
        assert deployment["spec"]["template"]["metadata"]["labels"] == {**expected, **track}
        (service,) = _of_kind(stable, "Service")
        assert service["spec"]["selector"] == selector
        for policy in _of_kind(stable, "NetworkPolicy") + _of_kind(stable, "PodDisruptionBudget"):
            assert policy["spec"].get("podSelector", policy["spec"].get("selector"))["matchLabels"] == selector


def test_deployment_runs_safely(case_repo: Callable[[str], Path]) -> None:
    project = load_project(case_repo("linear"))
    (deployment,) = _of_kind(build_env(project, "prod"), "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "replicas" not in spec  # the HPA owns it in prod
    assert pod["terminationGracePeriodSeconds"] > project.config.serving.drain_seconds
    assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["runAsNonRoot"]
    assert container["securityContext"]["readOnlyRootFilesystem"]
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["startupProbe"]["periodSeconds"] * container["startupProbe"]["failureThreshold"] >= 120
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert {"name": "MLGIT_SERVING_DRAIN_SECONDS", "value": "20"} in container["env"]
    assert pod["topologySpreadConstraints"]


def test_gpu_component(case_repo: Callable[[str], Path]) -> None:
    objects = build_env(load_project(case_repo("linear-gpu")), "prod")
    pod = _of_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"  # a string, not an int
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    (hpa,) = _of_kind(objects, "HorizontalPodAutoscaler")
    assert [m["type"] for m in hpa["spec"]["metrics"]] == ["Resource", "Pods"]
    assert _of_kind(objects, "ServiceMonitor")


def test_review_app_is_named_after_the_slug(case_repo: Callable[[str], Path]) -> None:
    project = load_project(case_repo("linear"))
    objects = build_env(project, "review", slug="mr-7", image="registry.example.com/ml/linear:mr-7")
    names = {o["metadata"]["name"] for o in objects if o["kind"] != "ConfigMap"}
    assert names == {"linear-mr-7", "linear-mr-7-exposure"}
    assert {o["metadata"]["namespace"] for o in objects} == {"linear-review"}
    (ingress,) = _of_kind(objects, "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "mr-7.linear.review.models.example.com"
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "linear-mr-7"
    assert ingress["spec"]["tls"][0]["secretName"] == "linear-mr-7-tls"
    (deployment,) = _of_kind(objects, "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/ml/linear:mr-7"


def test_review_app_on_a_gateway_points_its_route_at_its_service(case_repo: Callable[[str], Path]) -> None:
    objects = build_env(load_project(case_repo("image-segmentation")), "review", slug="mr-7")
    (route,) = _of_kind(objects, "HTTPRoute")
    assert route["spec"]["rules"][0]["backendRefs"][0]["name"] == "image-segmentation-mr-7"
    assert _of_kind(objects, "Certificate")[0]["spec"]["secretName"] == "image-segmentation-mr-7-tls"
    assert _of_kind(objects, "ReferenceGrant")[0]["spec"]["from"][0]["namespace"] == "gateway-system"


def test_image_override_replaces_the_pin(case_repo: Callable[[str], Path]) -> None:
    text = build_env_yaml(load_project(case_repo("linear")), "dev", image=f"other.example.com/x@{DIGEST}")
    assert f"image: other.example.com/x@{DIGEST}" in text


@pytest.mark.parametrize(
    ("env", "kwargs", "message"),
    [
        ("nope", {}, "unknown environment 'nope'"),
        ("review", {}, "needs its branch slug"),
        ("dev", {"slug": "x"}, "review apps only"),
        ("review", {"slug": "Not_A_Label"}, "not a DNS label"),
        ("review", {"slug": "x" * 60}, "too long"),
        ("dev", {"image": "registry.example.com/ml/linear"}, "no tag or digest"),
    ],
)
def test_build_rejects_bad_requests(
    env: str, kwargs: dict[str, str], message: str, case_repo: Callable[[str], Path]
) -> None:
    with pytest.raises(MlgitError, match=message):
        build_env(load_project(case_repo("linear")), env, **kwargs)


def test_missing_kubectl_says_what_to_install(
    model_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(KUBECTL_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MlgitError, match="kubectl not found") as caught:
        build_env(load_project(model_repo), "dev")
    assert caught.value.hint and "install kubectl" in caught.value.hint


def test_kustomize_errors_show_its_message(model_repo: Path) -> None:
    (model_repo / DEPLOY / "overlays" / "dev" / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(MlgitError, match="kustomize could not build") as caught:
        build_env(load_project(model_repo), "dev")
    assert any("missing.yaml" in problem for problem in caught.value.problems)
