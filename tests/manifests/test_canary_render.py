"""A canary environment's manifests: the canary runs the stable's pod spec, its pods are another instance, the
weights come from the pin file alone, and render adds or removes the canary's state around the stable pin."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from mlgit import render
from mlgit.config.load import CONFIG_FILE, load_project
from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.manifests.build import build_env
from mlgit.manifests.canary_state import CanaryState, has_canary, read_canary, write_canary
from mlgit.manifests.pins import pin_path, read_pin, write_pin
from mlgit.policy.check import run_check
from mlgit.policy.inputs import environment_names
from mlgit.policy.settings import PlatformSettings

REPO = "registry.example.com/ml/linear"
STABLE = f"{REPO}@sha256:" + "1" * 64
CANARY = f"{REPO}@sha256:" + "2" * 64
GATEWAY = {"kind": "gateway", "gateway": {"name": "public", "namespace": "gateway-system"}}
TRACK = "mlgit.dev/track"


def _configure(root: Path, changes: dict[str, Any]) -> None:
    doc = read_yaml(root / CONFIG_FILE)
    doc.update(changes)
    (root / CONFIG_FILE).write_text(dump_yaml(doc), encoding="utf-8")
    render.render(load_project(root, warn=False), prune=True)


def _deployments(root: Path, env: str, **build: Any) -> dict[str, dict[str, Any]]:
    objects = build_env(load_project(root, warn=False), env, **build)
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}


def _pod_spec_without_track(deployment: dict[str, Any]) -> dict[str, Any]:
    """The pod template with what may differ between the tracks taken out: instance and track labels (and the
    instance its spread constraints select), the image (and a re-encrypting Route's certificate Secret, which
    each Service has its own of)."""
    template = copy.deepcopy(deployment["spec"]["template"])
    for label in ("app.kubernetes.io/instance", TRACK):
        template["metadata"]["labels"].pop(label)
    for constraint in template["spec"].get("topologySpreadConstraints", []):
        constraint["labelSelector"]["matchLabels"].pop("app.kubernetes.io/instance")
    for container in template["spec"]["containers"]:
        container.pop("image")
    for volume in template["spec"].get("volumes", []):
        if volume["name"] == "serving-cert":
            volume["secret"]["secretName"] = volume["secret"]["secretName"].removesuffix("-canary")
    return template


def test_every_patch_of_the_stable_applies_to_the_canary(model_repo: Path) -> None:
    """Auth, docs, tracing, payload logging, GPU, high availability, OpenShift: the canary's pods are the stable's."""
    _configure(
        model_repo,
        {
            "platform": "openshift",
            "serving": {**read_yaml(model_repo / CONFIG_FILE)["serving"], "device": "gpu", "gpus": 1},
            "monitoring": {
                "enabled": True,
                "tracing": {"otlp_endpoint": "http://otel.observability:4318/v1/traces"},
                "payload_logging": {"url": "https://payloads.example.com/events"},
            },
            "environments": {
                "prod": {
                    "exposure": {"kind": "route", "route": {"termination": "reencrypt"}, "public": ["docs"]},
                    "auth": {"mode": "api-key"},
                    "canary": {},
                }
            },
            "review": {"enabled": False},
        },
    )
    deployments = _deployments(model_repo, "prod")
    stable, canary = deployments["linear"], deployments["linear-canary"]
    assert _pod_spec_without_track(canary) == _pod_spec_without_track(stable)
    env = {e["name"] for e in canary["spec"]["template"]["spec"]["containers"][0]["env"]}
    for variable in ("MLGIT_SERVING_API_KEYS_DIR", "MLGIT_SERVING_DOCS", "MLGIT_SERVING_TRACING_ENDPOINT"):
        assert variable in env
    assert canary["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # The high-availability component spreads each track's own pods (a selector of the stable's pods would
    # leave the canary's unspread).
    for deployment in (stable, canary):
        pods = deployment["spec"]["template"]["metadata"]["labels"]
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert len(spread) == 2
        for constraint in spread:
            assert (
                constraint["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"]
                == pods["app.kubernetes.io/instance"]
            )
    assert "runAsUser" not in canary["spec"]["template"]["spec"]["securityContext"]  # the OpenShift patch


def test_the_canary_is_another_instance_and_the_stable_keeps_its_selector(model_repo: Path) -> None:
    before = _deployments(model_repo, "dev")["linear"]
    _configure(model_repo, {"environments": {"dev": {"canary": {}}, "staging": {}, "prod": {}}})
    objects = build_env(load_project(model_repo, warn=False), "dev")
    stable, canary = (
        next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)
        for kind, name in (("Deployment", "linear"), ("Deployment", "linear-canary"))
    )
    assert stable["spec"]["selector"] == before["spec"]["selector"]
    assert stable["spec"]["template"]["metadata"]["labels"][TRACK] == "stable"
    pods = canary["spec"]["template"]["metadata"]["labels"]
    assert pods[TRACK] == "canary" and pods["app.kubernetes.io/instance"] == "linear-dev-canary"
    assert canary["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "linear-dev-canary"
    # Whatever selects the stable's pods leaves the canary's alone; the canary's own objects select only them.
    for obj in objects:
        chosen = _selector(obj)
        if chosen:
            mine = obj["metadata"]["name"].startswith("linear-canary")
            assert all(pods.get(k) == v for k, v in chosen.items()) == mine, obj["metadata"]["name"]


def _selector(obj: dict[str, Any]) -> dict[str, str] | None:
    spec = obj.get("spec") or {}
    if obj["kind"] == "Service":
        return spec["selector"]
    if obj["kind"] == "NetworkPolicy":
        return spec["podSelector"]["matchLabels"]
    if obj["kind"] in ("Deployment", "PodDisruptionBudget"):
        return spec["selector"]["matchLabels"]
    return None


@pytest.mark.parametrize("exposure", ["ingress", "gateway", "route"])
def test_the_weights_come_from_the_pin_file_and_render_check_stays_clean(model_repo: Path, exposure: str) -> None:
    platform = {"platform": "openshift"} if exposure == "route" else {}
    kind = GATEWAY if exposure == "gateway" else {"kind": exposure}
    canary = {"canary": {"mirror": exposure != "route"}}
    # gRPC (serving.grpc_port) splits by the same weights; an OpenShift Route cannot carry it.
    serving = {"serving": {**read_yaml(model_repo / CONFIG_FILE)["serving"], "grpc_port": 9000}}
    _configure(
        model_repo,
        {
            **platform,
            **({} if exposure == "route" else serving),
            "environments": {"dev": {"exposure": kind, **canary}, "staging": {}, "prod": {}},
        },
    )
    write_pin(model_repo, "dev", STABLE)
    write_canary(model_repo, "dev", canary=CANARY, weight=30, replicas=2)
    assert render.drift(load_project(model_repo, warn=False)).clean
    objects = build_env(load_project(model_repo, warn=False), "dev")
    if exposure == "gateway":
        (route,) = [o for o in objects if o["kind"] == "HTTPRoute"]
        rule = route["spec"]["rules"][0]
        assert [(r["name"], r["weight"]) for r in rule["backendRefs"]] == [("linear", 70), ("linear-canary", 30)]
        mirror = rule["filters"][0]["requestMirror"]
        assert (mirror["backendRef"]["name"], mirror["percent"]) == ("linear-canary", 100)
        (grpc,) = [o for o in objects if o["kind"] == "GRPCRoute"]
        refs = grpc["spec"]["rules"][0]["backendRefs"]
        assert [(r["name"], r["port"], r["weight"]) for r in refs] == [
            ("linear", 9000, 70),
            ("linear-canary", 9000, 30),
        ]
    elif exposure == "ingress":
        ingresses = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Ingress"}
        annotations = ingresses["linear-canary"]["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/canary-weight"] == "30"
        grpc = ingresses["linear-grpc-canary"]
        assert grpc["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "30"
        assert grpc["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] == {
            "name": "linear-canary",
            "port": {"name": "grpc"},
        }
        mirror = ingresses["linear"]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/mirror-target"]
        assert mirror == "http://linear-canary.linear-dev.svc.cluster.local$request_uri"
    else:
        routes = [o for o in objects if o["kind"] == "Route"]
        assert routes and all(r["spec"]["to"]["weight"] == 70 for r in routes)
        assert all(
            r["spec"]["alternateBackends"] == [{"kind": "Service", "name": "linear-canary", "weight": 30}]
            for r in routes
        )
    replicas = {o["metadata"]["name"]: o["spec"].get("replicas") for o in objects if o["kind"] == "Deployment"}
    assert replicas["linear-canary"] == 2
    if exposure != "route":  # the canary's pods take gRPC from where the stable's do
        admitted = {
            (o["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"], port["port"])
            for o in objects
            if o["kind"] == "NetworkPolicy"
            for rule in o["spec"].get("ingress", [])
            for port in rule.get("ports", [])
        }
        assert {("linear-dev", "grpc"), ("linear-dev-canary", "grpc")} <= admitted
    if exposure == "gateway":  # no pods, nothing mirrored (an old pin file without mirror-percent gets one)
        write_canary(model_repo, "dev", weight=0, replicas=0)
        path = pin_path(model_repo, "dev")
        path.write_text(path.read_text(encoding="utf-8").replace("      - mirror-percent=0\n", ""), encoding="utf-8")
        render.render(load_project(model_repo, warn=False))
        assert "      - mirror-percent=0\n" in path.read_text(encoding="utf-8")
        idle = build_env(load_project(model_repo, warn=False), "dev")
        (route,) = [o for o in idle if o["kind"] == "HTTPRoute"]
        assert route["spec"]["rules"][0]["filters"][0]["requestMirror"]["percent"] == 0
        (grpc,) = [o for o in idle if o["kind"] == "GRPCRoute"]
        assert [r["weight"] for r in grpc["spec"]["rules"][0]["backendRefs"]] == [100, 0]


def test_an_image_override_runs_in_the_stable_alone(model_repo: Path) -> None:
    """`mlgit deploy --image` (a freshly built dev image) replaces the stable's image, never the canary's."""
    _configure(model_repo, {"environments": {"dev": {"canary": {}}, "staging": {}, "prod": {}}})
    write_canary(model_repo, "dev", canary=CANARY, weight=10, replicas=1)
    built = f"{REPO}@sha256:" + "3" * 64
    deployments = _deployments(model_repo, "dev", image=built)
    assert deployments["linear"]["spec"]["template"]["spec"]["containers"][0]["image"] == built
    assert deployments["linear-canary"]["spec"]["template"]["spec"]["containers"][0]["image"] == CANARY


def test_render_adds_and_removes_the_canary_state_around_the_stable_pin(model_repo: Path) -> None:
    write_pin(model_repo, "prod", STABLE)
    on = {"environments": {"dev": {}, "staging": {}, "prod": {"canary": {}}}}
    doc = read_yaml(model_repo / CONFIG_FILE)
    doc.update(on)
    (model_repo / CONFIG_FILE).write_text(dump_yaml(doc), encoding="utf-8")
    # Turning it on changes the existing pin file: render --check says so until render runs.
    assert "deploy/overlays/prod/image/kustomization.yaml" in render.drift(load_project(model_repo, warn=False)).changed
    render.render(load_project(model_repo, warn=False))
    assert read_canary(model_repo, "prod") == CanaryState(STABLE, None, 0, 0)
    assert render.drift(load_project(model_repo, warn=False)).clean
    write_canary(model_repo, "prod", weight=0, replicas=0, canary=CANARY)
    render.render(load_project(model_repo, warn=False))  # the canary's state is left alone
    assert read_canary(model_repo, "prod").canary == CANARY
    _configure(model_repo, {"environments": {"dev": {}, "staging": {}, "prod": {}}})
    assert not has_canary(model_repo, "prod")
    assert read_pin(model_repo, "prod") == STABLE
    assert "canary" not in pin_path(model_repo, "prod").read_text(encoding="utf-8")


@pytest.mark.parametrize("grpc_port", [None, 9000], ids=["http", "grpc"])
def test_a_running_canary_passes_every_policy_and_an_unpinned_one_does_not(
    model_repo: Path, grpc_port: int | None
) -> None:
    """The canary's objects meet the policies the stable's do (TLS, network policies, probes, labels...) in each
    tier, and MLGIT-IMG-005 / MLGIT-REL-005 judge its image and weight, with and without gRPC routes."""
    _configure(
        model_repo,
        {
            "serving": {**read_yaml(model_repo / CONFIG_FILE)["serving"], "grpc_port": grpc_port},
            "environments": {
                "dev": {},
                "staging": {"canary": {"mirror": True}},
                "prod": {"exposure": GATEWAY, "canary": {}},
            },
        },
    )
    for env in ("dev", "staging", "prod"):
        write_pin(model_repo, env, STABLE)
    for env in ("staging", "prod"):
        write_canary(model_repo, env, canary=CANARY, weight=10, replicas=1)
    project = load_project(model_repo, warn=False)
    today, platform = dt.date.today(), PlatformSettings()
    result = run_check(project, environment_names(project, None), pipeline=False, today=today, platform=platform)
    assert [f.message for f in result.findings] == []
    write_canary(model_repo, "prod", canary=None)
    result = run_check(project, ["prod"], pipeline=False, today=today, platform=platform)
    assert {f.policy.id for f in result.findings} == {"MLGIT-IMG-005"}


def _on(model_repo: Path) -> None:
    _configure(model_repo, {"environments": {"dev": {}, "staging": {}, "prod": {"canary": {}}}})


def test_turning_the_canary_on_keeps_the_stable_entry_and_the_comments(model_repo: Path) -> None:
    path = pin_path(model_repo, "prod")
    by_tag = path.read_text(encoding="utf-8").replace("newTag: unpinned", "newTag: v1  # pinned by hand")
    path.write_text("# Our own note: prod is frozen until June.\n" + by_tag, encoding="utf-8")
    _on(model_repo)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Our own note: prod is frozen until June.\n")
    assert "newTag: v1  # pinned by hand" in text
    assert read_canary(model_repo, "prod") == CanaryState(None, None, 0, 0)
    assert "# The canary (environments.prod.canary) is state here too" in text
    assert render.drift(load_project(model_repo, warn=False)).clean


def test_turning_a_running_canary_off_warns_on_stderr(model_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _on(model_repo)
    write_pin(model_repo, "prod", STABLE)
    write_canary(model_repo, "prod", canary=CANARY, weight=30, replicas=2)
    capsys.readouterr()
    _configure(model_repo, {"environments": {"dev": {}, "staging": {}, "prod": {}}})
    warning = " ".join(capsys.readouterr().err.split())
    assert "warning:" in warning and str(pin_path(model_repo, "prod")) in warning
    assert f"the running canary {CANARY} (weight 30%, 2 replicas)" in warning
    assert read_pin(model_repo, "prod") == STABLE and not has_canary(model_repo, "prod")
    # A canary that does not run goes without a word.
    _on(model_repo)
    capsys.readouterr()
    _configure(model_repo, {"environments": {"dev": {}, "staging": {}, "prod": {}}})
    assert "warning" not in capsys.readouterr().err


def test_renaming_the_model_renames_the_canary_parts_and_keeps_the_state(model_repo: Path) -> None:
    _on(model_repo)
    write_pin(model_repo, "prod", STABLE)
    write_canary(model_repo, "prod", canary=CANARY, weight=20, replicas=1)
    _configure(model_repo, {"name": "lin2"})
    text = pin_path(model_repo, "prod").read_text(encoding="utf-8")
    assert "name: lin2-canary\n" in text and "name: lin2-canary-split\n" in text and "linear-canary" not in text
    assert read_canary(model_repo, "prod") == CanaryState(STABLE, CANARY, 20, 1)
    deployments = _deployments(model_repo, "prod")  # kustomize builds: the replicas entry finds its Deployment
    assert deployments["lin2-canary"]["spec"]["replicas"] == 1
    assert render.drift(load_project(model_repo, warn=False)).clean
