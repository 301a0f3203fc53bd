"""`mlgit deploy` on a real control plane (tests/cluster/conftest.py): server-side apply with field
ownership, the API server's own validation, server-side dry runs, and the smoke check through a
real port-forward (API server -> kwok's kubelet endpoint -> the model served by the test)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from mlgit.scaffold import InitOptions, init_repository
from tests.cluster.conftest import DIGEST2, flat, image, serve_model, update_config
from tests.cluster.kube import Kube, containers, managers
from tests.onnx_models import write_linear_model

SKIP_SMOKE = "--skip-smoke"


def test_first_deploy_applies_waits_and_smoke_checks_through_a_port_forward(
    name: str, namespace: str, model_server: subprocess.Popen[bytes], mlgit: Callable[..., Result], kube: Kube
) -> None:
    result = mlgit("deploy", "--env", "dev", "--image", image(name))
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert f"deployment.apps/{name} -n {namespace} created" in out
    assert f"model {name} is ready and answered the sample as expected" in out
    assert out.rstrip().endswith(f"deployed dev: https://{name}.dev.models.example.com")  # the environment:url
    assert "1/1 updated, 1/1 available" in flat(result.stderr)
    deployment = kube.get("deployment", name, namespace)
    assert deployment is not None and containers(deployment) == {"server": image(name)}
    assert deployment["status"]["readyReplicas"] == 1  # the Deployment controller's count, from kwok's Ready pod
    applied = [m for m in deployment["metadata"]["managedFields"] if m["manager"] == "mlgit"]
    assert [m["operation"] for m in applied] == ["Apply"]
    labels = {"app.kubernetes.io/managed-by": "mlgit", "mlgit.dev/model": name, "mlgit.dev/environment": "dev"}
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    for kind in ("serviceaccount", "service", "ingress", "configmap"):
        assert len(kube.list(kind, namespace, selector)) == 1, kind
    policies = {p["metadata"]["name"] for p in kube.list("networkpolicy", namespace, selector)}
    assert policies == {name, f"{name}-exposure"}
    # The Service selects the pod that kwok gave an IP: the API server's endpoints are real.
    slices = kube.list("endpointslices", namespace, f"kubernetes.io/service-name={name}")
    assert [e for s in slices for e in s.get("endpoints") or [] if e["conditions"]["ready"]]


def test_the_smoke_check_fails_when_nothing_answers_behind_the_port_forward(
    name: str, namespace: str, mlgit: Callable[..., Result], kube: Kube
) -> None:
    """No model_server: the port-forward reaches kwok, whose target refuses the connection."""
    result = mlgit("deploy", "--env", "dev", "--image", image(name), "--timeout", "60")
    assert result.exit_code == 1
    err = flat(result.stderr)
    assert "smoke check" in err and "Traceback" not in result.output
    assert "this was the first deploy: nothing to roll back to" in err


def test_the_smoke_check_catches_a_pod_that_answers_differently(
    name: str, namespace: str, kwok: tuple[str, int], mlgit: Callable[..., Result], tmp_path: Path
) -> None:
    """Behind the port-forward runs a model of the same name with other weights (an image of the wrong build)."""
    other = write_linear_model(tmp_path / "retrained.onnx", scale=2.0)
    imposter = init_repository(InitOptions(target=tmp_path / "imposter", name=name, model=other))
    for _ in serve_model(imposter, kwok):
        result = mlgit("deploy", "--env", "dev", "--image", image(name))
    assert result.exit_code == 1
    err = flat(result.stderr)
    assert f"smoke check: model {name} answered the sample differently than expected" in err
    assert "compare the digests" in err and "Traceback" not in result.output


def test_deploy_records_image_and_smoke_latency_for_promotion(
    name: str,
    namespace: str,
    model_server: subprocess.Popen[bytes],
    mlgit: Callable[..., Result],
    tmp_path: Path,
) -> None:
    dotenv = tmp_path / "deploy.env"
    result = mlgit("deploy", "--env", "dev", "--image", image(name), "--dotenv", str(dotenv))
    assert result.exit_code == 0, result.output
    values = dict(line.split("=", 1) for line in dotenv.read_text().splitlines())
    assert values["MLGIT_DEPLOYED_IMAGE"] == image(name)
    assert float(values["MLGIT_SMOKE_LATENCY_MS"]) > 0


def test_a_second_deploy_of_the_same_thing_changes_nothing(
    name: str, namespace: str, mlgit: Callable[..., Result], kube: Kube
) -> None:
    assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
    before = kube.get("deployment", name, namespace)
    result = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE)
    assert result.exit_code == 0, result.output
    assert "dev: unchanged" in flat(result.stdout)
    assert " created" not in result.stdout and " configured" not in result.stdout
    after = kube.get("deployment", name, namespace)
    assert before is not None and after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_fields_other_managers_added_survive_a_redeploy(
    name: str, namespace: str, mlgit: Callable[..., Result], kube: Kube
) -> None:
    """A sidecar (list item merged by its name) and an annotation that mlgit does not render stay theirs."""
    assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
    kube.run("annotate", "deployment", name, "-n", namespace, "team.example.com/on-call=ml-team")
    sidecar = {"name": "mesh-proxy", "image": "registry.example.com/proxy@" + DIGEST2}
    kube.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"spec": {"containers": [sidecar]}}},
        },
        "mesh-injector",
    )
    result = mlgit("deploy", "--env", "dev", "--image", image(name, DIGEST2), SKIP_SMOKE)
    assert result.exit_code == 0, result.output
    deployment = kube.get("deployment", name, namespace)
    assert deployment is not None
    assert containers(deployment) == {"server": image(name, DIGEST2), "mesh-proxy": sidecar["image"]}
    assert deployment["metadata"]["annotations"]["team.example.com/on-call"] == "ml-team"
    assert {"mlgit", "mesh-injector", "kubectl-annotate"} <= managers(deployment)


def test_an_imperative_edit_of_a_rendered_field_is_taken_back(
    name: str, namespace: str, mlgit: Callable[..., Result], kube: Kube
) -> None:
    """git is the source of truth: `kubectl scale` of a Deployment whose replicas mlgit renders is drift."""
    assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
    kube.run("scale", "deployment", name, "-n", namespace, "--replicas", "3")
    result = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE)
    assert result.exit_code == 0, result.output
    assert "took .spec.replicas back from kubectl" in flat(result.stdout)
    deployment = kube.get("deployment", name, namespace)
    assert deployment is not None and deployment["spec"]["replicas"] == 1


def test_replicas_of_an_autoscaled_deployment_stay_with_whoever_scales_it(
    name: str, namespace: str, mlgit: Callable[..., Result], model_repo: Path, kube: Kube
) -> None:
    """Switching autoscaling on hands spec.replicas over unchanged; a later scale (an HPA's, a person's) stays."""
    update_config(model_repo, {"environments": {"dev": {"replicas": 3}, "staging": {}, "prod": {}}})
    assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
    autoscaled = {"replicas": None, "autoscaling": {"enabled": True, "min_replicas": 2, "max_replicas": 5}}
    update_config(model_repo, {"environments": {"dev": autoscaled}})
    result = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE)
    assert result.exit_code == 0, result.output
    deployment = kube.get("deployment", name, namespace)
    assert deployment is not None and deployment["spec"]["replicas"] == 3
    assert kube.get("horizontalpodautoscaler", name, namespace) is not None
    kube.run("scale", "deployment", name, "-n", namespace, "--replicas", "4")
    again = mlgit("deploy", "--env", "dev", "--image", image(name, DIGEST2), SKIP_SMOKE)
    assert again.exit_code == 0, again.output
    deployment = kube.get("deployment", name, namespace)
    assert deployment is not None and deployment["spec"]["replicas"] == 4


def test_a_field_another_owner_declares_is_a_conflict_until_forced(
    name: str, namespace: str, mlgit: Callable[..., Result], kube: Kube
) -> None:
    assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
    other = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace}}
    kube.apply({**other, "spec": {"replicas": 2}}, "argocd-controller", "--force-conflicts")
    refused = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE)
    assert refused.exit_code == 1
    err = flat(refused.stderr)
    assert f"deployment.apps/{name} -n {namespace}: argocd-controller also declares fields that mlgit renders" in err
    assert ".spec.replicas: applied by argocd-controller" in err
    assert "mlgit deploy --force-conflicts" in err and "Traceback" not in refused.output
    deployment = kube.get("deployment", name, namespace)
    assert deployment is not None and deployment["spec"]["replicas"] == 2
    forced = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE, "--force-conflicts")
    assert forced.exit_code == 0, forced.output
    deployment = kube.get("deployment", name, namespace)
    assert deployment is not None and deployment["spec"]["replicas"] == 1


def test_the_api_servers_validation_error_names_the_field(
    name: str, namespace: str, mlgit: Callable[..., Result], model_repo: Path, kube: Kube
) -> None:
    """A hand edit of a generated file that only the API server's validation catches (HTTP 422)."""
    deployment_file = model_repo / "deploy" / "base" / "deployment.yaml"
    text = deployment_file.read_text()
    assert "containerPort: 8080" in text
    deployment_file.write_text(text.replace("containerPort: 8080", "containerPort: 70000"))
    result = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE)
    assert result.exit_code == 1
    err = flat(result.stderr)
    assert f"the API server rejected apply deployment.apps/{name} -n {namespace}" in err
    assert "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000" in err
    assert "mlgit render" in err and "Traceback" not in result.output
    assert kube.get("deployment", name, namespace) is None


def test_an_immutable_field_change_names_the_way_out(
    name: str, namespace: str, mlgit: Callable[..., Result], model_repo: Path, kube: Kube
) -> None:
    """A Deployment's selector cannot change in place; destroy and deploy again is the way out."""
    assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
    deployment_file = model_repo / "deploy" / "base" / "deployment.yaml"
    text = deployment_file.read_text()
    track = "example.com/track: stable"
    for indent in ("      ", "        "):  # the selector's matchLabels, then the pod template's labels
        label = f"{indent}app.kubernetes.io/name: {name}\n"
        assert label in text
        text = text.replace(label, f"{label}{indent}{track}\n", 1)
    deployment_file.write_text(text)
    result = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE)
    assert result.exit_code == 1
    err = flat(result.stderr)
    assert "spec.selector" in err and "field is immutable" in err
    assert "mlgit destroy --env ENV" in err and "Traceback" not in result.output
    assert mlgit("destroy", "--env", "dev").exit_code == 0
    redeployed = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE)
    assert redeployed.exit_code == 0, redeployed.output


def test_dry_run_is_the_api_servers_and_changes_nothing(
    name: str, namespace: str, mlgit: Callable[..., Result], kube: Kube
) -> None:
    first = mlgit("deploy", "--env", "dev", "--image", image(name), "--dry-run")
    assert first.exit_code == 0, first.output
    assert "diff computed by the API server" in flat(first.stderr)
    # Defaulting happened on the server: fields nobody rendered appear in the prediction.
    assert "+        terminationMessagePath: /dev/termination-log" in first.stdout
    assert kube.get("deployment", name, namespace) is None
    assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
    before = kube.get("deployment", name, namespace)
    result = mlgit("deploy", "--env", "dev", "--image", image(name, DIGEST2), "--dry-run")
    assert result.exit_code == 0, result.output
    assert (
        f"-        image: {image(name)}" in result.stdout and f"+        image: {image(name, DIGEST2)}" in result.stdout
    )
    after = kube.get("deployment", name, namespace)
    assert before is not None and after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    unchanged = mlgit("deploy", "--env", "dev", "--image", image(name), "--dry-run")
    assert "dev: no changes" in flat(unchanged.stdout)


def test_a_dry_run_the_api_server_rejects_shows_the_error(
    name: str, namespace: str, mlgit: Callable[..., Result], model_repo: Path
) -> None:
    deployment_file = model_repo / "deploy" / "base" / "deployment.yaml"
    deployment_file.write_text(deployment_file.read_text().replace("containerPort: 8080", "containerPort: 70000"))
    result = mlgit("deploy", "--env", "dev", "--image", image(name), "--dry-run")
    assert result.exit_code == 1
    assert "Invalid value: 70000" in flat(result.stderr)


def test_deploy_creates_the_namespace_only_when_configured(
    name: str, model_repo: Path, mlgit: Callable[..., Result], kube: Kube
) -> None:
    missing = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE)
    assert missing.exit_code == 1
    assert f"namespace {name}-dev does not exist" in flat(missing.stderr)
    assert "create_namespace: true" in flat(missing.stderr)
    review = mlgit("deploy", "--env", "review", "--slug", "feat-x", "--image", image(name), SKIP_SMOKE)
    assert review.exit_code == 0, review.output
    assert kube.get("namespace", f"{name}-review") is not None
    deployment = kube.get("deployment", f"{name}-feat-x", f"{name}-review")
    assert deployment is not None
    assert deployment["metadata"]["labels"]["mlgit.dev/environment"] == "review-feat-x"
    status = mlgit("status", "--env", "review", "--slug", "feat-x", "--json")
    assert status.exit_code == 0, status.output
    (record,) = json.loads(status.stdout)
    assert record["deployed"] is True and record["url"] == f"https://feat-x.{name}.review.models.example.com"
