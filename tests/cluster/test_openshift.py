"""OpenShift on the real control plane: the Route CRD published in the openshift/api module is served and
judges what mlgit renders (its CEL rules included); review apps on Routes share one wildcard certificate,
which destroying one review app leaves in place."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from tests.cluster.conftest import flat, image, update_config
from tests.cluster.kube import Kube, wait_for
from tests.fixtures_integration import unavailable
from tests.manifests.schemas import CRDS_COMMAND, CRDS_ENV

SKIP_SMOKE = "--skip-smoke"
ROUTES = "routes.route.openshift.io"


@pytest.fixture(scope="session")
def route_crd(kube: Kube) -> None:
    """The Route CRD served by the control plane (control-plane.sh installs it too; this is idempotent)."""
    directory = os.environ.get(CRDS_ENV)
    if not directory:
        unavailable(f"{CRDS_ENV} is not set: `{CRDS_COMMAND}` prepares the Route CRD")
    crd = Path(directory) / "route.openshift.io_routes.yaml"
    if not crd.is_file():
        unavailable(f"{crd} is missing: regenerate the CRDs with `{CRDS_COMMAND}`")
    kube.run("apply", "--server-side", "--force-conflicts", "--field-manager", "mlgit-control-plane", "-f", str(crd))
    kube.run("wait", "--for", "condition=Established", "--timeout", "60s", f"crd/{ROUTES}")


def test_review_apps_share_one_wildcard_certificate_that_destroying_one_leaves(
    route_crd: None, name: str, model_repo: Path, mlgit: Callable[..., Result], kube: Kube
) -> None:
    update_config(
        model_repo, {"platform": "openshift", "exposure": {"kind": "route"}, "review": {"tls": {"wildcard": True}}}
    )
    namespace, secret = f"{name}-review", f"{name}-review-wildcard-tls"
    for slug in ("one", "two"):
        deployed = mlgit("deploy", "--env", "review", "--slug", slug, "--image", image(name), SKIP_SMOKE)
        assert deployed.exit_code == 0, deployed.output
    routes = {r["metadata"]["name"]: r for r in kube.list(ROUTES, namespace)}
    for slug in ("one", "two"):
        route = routes[f"{name}-{slug}"]
        assert route["spec"]["host"] == f"{slug}.{name}.review.models.example.com"
        assert route["spec"]["path"] == "/v2"
        assert route["spec"]["tls"]["externalCertificate"] == {"name": secret}
        assert "cert-manager.io/issuer-name" not in route["metadata"].get("annotations", {})
        pod = kube.get("deployment", f"{name}-{slug}", namespace)["spec"]["template"]["spec"]  # type: ignore[index]
        assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(pod["securityContext"])
    (certificate,) = kube.list("certificates.cert-manager.io", namespace)
    assert certificate["metadata"]["name"] == secret
    assert certificate["spec"]["dnsNames"] == [f"*.{name}.review.models.example.com"]
    assert kube.get("rolebinding", f"{secret}-router", namespace) is not None

    destroyed = mlgit("destroy", "--env", "review", "--slug", "one")
    assert destroyed.exit_code == 0, destroyed.output
    assert f"route.route.openshift.io/{name}-one -n {namespace} deleted" in flat(destroyed.stdout)
    wait_for("review app one's Route to go", lambda: kube.get(ROUTES, f"{name}-one", namespace) is None)
    assert kube.get("certificate.cert-manager.io", secret, namespace) is not None
    assert kube.get("rolebinding", f"{secret}-router", namespace) is not None
    assert kube.get(ROUTES, f"{name}-two", namespace) is not None
    # Deploying again leaves the shared certificate as it was (the same object, applied unchanged).
    again = mlgit("deploy", "--env", "review", "--slug", "two", "--image", image(name), SKIP_SMOKE)
    assert again.exit_code == 0, again.output
    assert "certificate" not in flat(again.stdout)
    after = kube.get("certificate.cert-manager.io", secret, namespace)
    assert after is not None and after["metadata"]["uid"] == certificate["metadata"]["uid"]


def test_the_route_schema_rejects_what_openshift_rejects(route_crd: None, kube: Kube, namespace: str) -> None:
    """The published CRD's rules hold on the server: passthrough with a path is refused (a CEL-free rule
    of its structural schema), an unknown termination by its enum."""
    route = {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": "bad", "namespace": namespace},
        "spec": {"host": "x.example.com", "to": {"kind": "Service", "name": "x"}, "path": "/v2",
                 "tls": {"termination": "passthrough"}},
    }  # fmt: skip
    refused = kube.run("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=json.dumps(route), check=False)
    assert refused.returncode != 0 and "spec" in refused.stderr, refused.stderr
    route["spec"]["tls"] = {"termination": "reencrypted"}
    refused = kube.run("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=json.dumps(route), check=False)
    assert refused.returncode != 0 and "reencrypted" in refused.stderr, refused.stderr
    route["spec"]["tls"] = {"termination": "edge", "insecureEdgeTerminationPolicy": "Redirect"}
    accepted = kube.run("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=json.dumps(route), check=False)
    assert accepted.returncode == 0, accepted.stderr
