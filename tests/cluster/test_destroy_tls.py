"""`mlgit destroy` deletes a TLS secret only when it belongs to this model's environment.

No cert-manager controller runs on the test control plane (its CRDs are installed): `issue_certificates`
makes what its ingress-shim and issuer would, through kubectl as another field manager.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mlgit.main import app
from mlgit.scaffold import InitOptions, init_repository
from tests.cluster.conftest import flat, image
from tests.cluster.kube import Kube, Obj

ENVIRONMENTS = "environments:\n  dev: {}\n  staging: {}\n  prod: {}\n"


def issue_certificates(kube: Kube, namespace: str) -> None:
    """What cert-manager does for each Ingress with `tls`: ingress-shim makes a Certificate named after the
    secret, controlled by the Ingress and carrying its labels, and the issuer writes the Secret with the
    certificate-name annotation. A Certificate another Ingress controls is left alone (ingress-shim does
    not take over a Certificate it does not own). Where a real cert-manager runs too (tests/cluster/
    cert-manager.sh), its ingress-shim may have made the Certificate already: only the Secret is added."""
    for ingress in kube.list("ingress", namespace):
        meta = ingress["metadata"]
        for tls in ingress["spec"].get("tls") or []:
            secret = tls["secretName"]
            existing = kube.get("certificates.cert-manager.io", secret, namespace)
            controllers = [r["uid"] for r in (existing or {}).get("metadata", {}).get("ownerReferences", [])]
            if existing is not None and meta["uid"] not in controllers:
                continue
            owner = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": meta["name"],
                     "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}  # fmt: skip
            issuer = {"name": "letsencrypt-prod", "kind": "ClusterIssuer"}
            labels, hosts = meta.get("labels", {}), tls["hosts"]
            certificate: Obj = {
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "metadata": {"name": secret, "namespace": namespace, "labels": labels, "ownerReferences": [owner]},
                "spec": {"secretName": secret, "dnsNames": hosts, "issuerRef": issuer},
            }
            if existing is None:
                kube.apply(certificate, "cert-manager-ingress-shim")
            annotations = {"cert-manager.io/certificate-name": secret, "cert-manager.io/alt-names": ",".join(hosts)}
            tls_secret: Obj = {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/tls",
                "metadata": {"name": secret, "namespace": namespace, "annotations": annotations},
                "data": {"tls.crt": "", "tls.key": ""},
            }
            if kube.get("secret", secret, namespace) is None:
                kube.apply(tls_secret, "cert-manager-certificates-issuing")


@pytest.fixture
def second_model(tmp_path: Path, linear_onnx: Path, name: str) -> Iterator[Callable[..., Result]]:
    """A second model, `<name>-b`, that runs `mlgit ARGS... REPO` like the `mlgit` fixture does."""
    repo = init_repository(InitOptions(target=tmp_path / "second", name=f"{name}-b", model=linear_onnx))
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, [*args, str(repo)], catch_exceptions=False)


def _add_environment(run: Callable[..., Result], repo_config: Path, env: str) -> None:
    with repo_config.open("a", encoding="utf-8") as handle:
        handle.write(ENVIRONMENTS + f"  {env}: {{create_namespace: true}}\n")
    assert run("render").exit_code == 0


def test_destroying_one_model_keeps_the_tls_secret_of_another_in_the_same_namespace(
    kube: Kube,
    name: str,
    model_repo: Path,
    tmp_path: Path,
    mlgit: Callable[..., Result],
    second_model: Callable[..., Result],
    model_server: object,
) -> None:
    """The reported case: model `a` environment `b-c` and model `a-b` environment `c` share the default
    namespace a-b-c, and destroying a-b's c deleted a's Secret/a-b-c-tls. Here a is this test's model."""
    shared = f"{name}-b-c"
    _add_environment(mlgit, model_repo / "mlgit.yaml", "b-c")
    _add_environment(second_model, tmp_path / "second" / "mlgit.yaml", "c")
    deployed = mlgit("deploy", "--env", "b-c", "--image", image(name))
    assert deployed.exit_code == 0, deployed.output
    # model_server answers as this test's model only: the second one's smoke check would ask it for <name>-b.
    deployed = second_model("deploy", "--env", "c", "--image", image(name), "--skip-smoke")
    assert deployed.exit_code == 0, deployed.output
    issue_certificates(kube, shared)
    ours = kube.get("ingress", name, shared)
    assert ours is not None
    (first_secret,) = [t["secretName"] for t in ours["spec"]["tls"]]
    result = second_model("destroy", "--env", "c")
    assert result.exit_code == 0, result.output
    assert kube.get("secret", first_secret, shared) is not None, flat(result.stdout)
    assert kube.get("ingress", name, shared) is not None
    assert f"secret/{name}-b-tls -n {shared} deleted" in flat(result.stdout)  # its own, named after its objects


def test_a_secret_our_ingress_names_but_another_ingress_controls_stays(
    kube: Kube, name: str, namespace: str, mlgit: Callable[..., Result], model_server: object
) -> None:
    """The secret's name and cert-manager annotation prove nothing: its Certificate must be ours."""
    other = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
             "metadata": {"name": "other", "namespace": namespace},
             "spec": {"tls": [{"hosts": ["other.example.com"], "secretName": f"{name}-tls"}],
                      "defaultBackend": {"service": {"name": "other", "port": {"number": 80}}}}}  # fmt: skip
    kube.apply(other, "other-team")
    issue_certificates(kube, namespace)  # before ours exists: the Certificate is the other Ingress's
    assert mlgit("deploy", "--env", "dev", "--image", image(name)).exit_code == 0
    ours = kube.get("ingress", name, namespace)
    assert ours is not None and ours["spec"]["tls"][0]["secretName"] == f"{name}-tls"  # the same secret
    result = mlgit("destroy", "--env", "dev")
    assert result.exit_code == 0, result.output
    assert kube.get("secret", f"{name}-tls", namespace) is not None
    assert "secret/" not in flat(result.stdout)


def test_the_secret_of_our_own_certificate_is_deleted(
    kube: Kube, name: str, namespace: str, mlgit: Callable[..., Result], model_server: object
) -> None:
    assert mlgit("deploy", "--env", "dev", "--image", image(name)).exit_code == 0
    issue_certificates(kube, namespace)
    result = mlgit("destroy", "--env", "dev")
    assert result.exit_code == 0, result.output
    assert f"secret/{name}-tls -n {namespace} deleted" in flat(result.stdout)
    assert kube.get("secret", f"{name}-tls", namespace) is None
