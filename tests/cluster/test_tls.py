"""TLS issued for real: cert-manager's own controllers against the control plane, a CA of the test's own.

tests/cluster/cert-manager.sh runs cert-manager (built from its Go module at a pinned release) against
the cluster for the session. Each test makes a CA, hands it to a CA ClusterIssuer named as its mlgit.yaml's
`tls.issuer`, deploys the dev environment and checks both of mlgit's TLS paths end to end:

- ingress exposure: mlgit's Ingress names the issuer in an annotation, cert-manager's ingress-shim makes
  the Certificate (the Ingress controls it), the CA issuer signs it;
- gateway exposure: mlgit renders the Certificate itself (no Gateway controller is involved in issuing).

Either way the Secret <name>-tls must hold a certificate the test's CA signed for the environment's host,
with the matching key, and `mlgit destroy` must remove it for good. test_destroy_tls.py covers which
Secrets destroy may delete, with cert-manager's objects written by hand; this file proves the real
controller makes what that test imitates.
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import Result

from tests.cluster.conftest import flat, image
from tests.cluster.kube import Kube, Obj, wait_for
from tests.fixtures_integration import unavailable

pytestmark = pytest.mark.integration

CERT_MANAGER_SH = Path(__file__).with_name("cert-manager.sh")
CERTIFICATE = "certificates.cert-manager.io"
CERTIFICATE_REQUEST = "certificaterequests.cert-manager.io"
EXPOSURES = {
    "ingress": "",  # the default
    "gateway": "exposure:\n  kind: gateway\n  gateway: {name: public, namespace: gateway-system}\n",
}


@dataclass(frozen=True)
class CertManager:
    namespace: str
    """Where a ClusterIssuer's Secrets live (its --cluster-resource-namespace)."""
    log: Path


@dataclass(frozen=True)
class CertificateAuthority:
    issuer: str
    """The CA ClusterIssuer that signs with it."""
    certificate: x509.Certificate


@pytest.fixture(scope="module")
def cert_manager(kube: Kube, cluster_kubeconfig: Path) -> Iterator[CertManager]:
    """cert-manager's controller running against the cluster while this file's tests run, and stopped after
    them unless it was running before. Not for the whole session: the other cluster tests rely on no
    cert-manager acting on their Ingresses (test_destroy_tls.py plays its part by hand). It is not built
    here: a cold build takes minutes, longer than a test may (tests/run.sh builds it first)."""
    env = {**os.environ, "KUBECONFIG": str(cluster_kubeconfig), "MLGIT_TEST_KUBECTL": kube.kubectl}
    env["MLGIT_CERT_MANAGER_NO_BUILD"] = "1"

    def script(command: str) -> subprocess.CompletedProcess[str]:
        args = ["bash", str(CERT_MANAGER_SH), command]
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=180, check=False)

    started = script("up")
    if started.returncode != 0:
        why = " ".join(started.stderr.strip().splitlines()[-3:])
        unavailable(f"cert-manager's controller is not running: {why}")
    values = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    yield CertManager(values["MLGIT_TEST_CERT_MANAGER_NAMESPACE"], Path(values["MLGIT_TEST_CERT_MANAGER_LOG"]))
    if "already running" not in started.stderr:
        script("down")


@pytest.fixture
def ca(kube: Kube, cert_manager: CertManager, name: str) -> Iterator[CertificateAuthority]:
    """A CA of this test's own, in a CA ClusterIssuer named <name>-ca that cert-manager reports Ready."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"mlgit test CA {name}")])
    now = datetime.now(UTC)
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    issuer = f"{name}-ca"
    kube.apply({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": issuer, "namespace": cert_manager.namespace},
        "data": {"tls.crt": _b64(certificate.public_bytes(serialization.Encoding.PEM)), "tls.key": _b64(key_pem)},
    })  # fmt: skip
    kube.apply({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": issuer},
                "spec": {"ca": {"secretName": issuer}}})  # fmt: skip
    try:
        wait_ready(kube, cert_manager, "clusterissuer", issuer)
        yield CertificateAuthority(issuer, certificate)
    finally:
        kube.run("delete", "clusterissuer", issuer, "--ignore-not-found", "--wait=false")
        kube.run("delete", "secret", issuer, "-n", cert_manager.namespace, "--ignore-not-found", "--wait=false")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _ready(obj: Obj) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def wait_ready(
    kube: Kube, cert_manager: CertManager, kind: str, name: str, namespace: str | None = None, timeout: float = 60
) -> Obj:
    """The object once its Ready condition is True; on timeout, the failure shows its conditions and
    cert-manager's last log lines (a wrong issuer name reads `Referenced "ClusterIssuer" not found`)."""
    seen: list[Obj | None] = [None]

    def check() -> Obj | None:
        seen[0] = kube.get(kind, name, namespace)
        return seen[0] if seen[0] is not None and _ready(seen[0]) else None

    try:
        return wait_for(f"{kind} {name} to become Ready", check, timeout)
    except AssertionError as error:
        status = (seen[0] or {}).get("status") if seen[0] is not None else "it does not exist"
        where = ["-n", namespace] if namespace else ["-A"]
        requests = kube.run("get", CERTIFICATE_REQUEST, *where, "-o", "wide", check=False).stdout
        log_tail = "".join(cert_manager.log.read_text(errors="replace").splitlines(True)[-10:])
        raise AssertionError(
            f"{error}\nits status: {status}\ncertificate requests:\n{requests}\ncert-manager's log ends:\n{log_tail}"
        ) from None


@pytest.mark.timeout(300)
@pytest.mark.parametrize("exposure", ["ingress", "gateway"])
def test_cert_manager_issues_the_environment_certificate_and_destroy_removes_it(
    exposure: str,
    kube: Kube,
    cert_manager: CertManager,
    ca: CertificateAuthority,
    name: str,
    namespace: str,
    model_repo: Path,
    mlgit: Callable[..., Result],
) -> None:
    config = model_repo / "mlgit.yaml"
    config.write_text(config.read_text() + f"tls:\n  issuer: {ca.issuer}\n" + EXPOSURES[exposure], encoding="utf-8")
    rendered = mlgit("render")
    assert rendered.exit_code == 0, rendered.output
    host = f"{name}.dev.{yaml.safe_load(config.read_text())['domain']}"  # dev's default: <name>.<env>.<domain>
    secret_name = f"{name}-tls"

    deployed = mlgit("deploy", "--env", "dev", "--skip-smoke", "--image", image(name))
    assert deployed.exit_code == 0, deployed.output

    # ingress-shim names its Certificate after the Ingress's secretName; mlgit names its own after the objects.
    certificate_name = secret_name if exposure == "ingress" else name
    certificate = wait_ready(kube, cert_manager, CERTIFICATE, certificate_name, namespace)
    assert certificate["spec"]["dnsNames"] == [host]
    assert certificate["spec"]["issuerRef"]["name"] == ca.issuer
    owners = [r for r in certificate["metadata"].get("ownerReferences") or [] if r.get("controller")]
    if exposure == "ingress":
        ingress = kube.get("ingress", name, namespace)
        assert ingress is not None
        assert [(o["kind"], o["name"], o["uid"]) for o in owners] == [("Ingress", name, ingress["metadata"]["uid"])]
    else:
        assert owners == []  # applied by mlgit, controlled by nobody

    secret = kube.get("secret", secret_name, namespace)
    assert secret is not None and secret["type"] == "kubernetes.io/tls"
    issued = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    issued.verify_directly_issued_by(ca.certificate)  # raises unless the test's CA signed it
    names = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [host]
    key = serialization.load_pem_private_key(base64.b64decode(secret["data"]["tls.key"]), password=None)
    assert key.public_key() == issued.public_key()
    assert base64.b64decode(secret["data"]["ca.crt"]) == ca.certificate.public_bytes(serialization.Encoding.PEM)

    # Well within the test's limit: a Secret that keeps coming back fails here, with mlgit's own message.
    destroyed = mlgit("destroy", "--env", "dev", "--timeout", "60")
    assert destroyed.exit_code == 0, destroyed.output
    assert f"secret/{secret_name} -n {namespace} deleted" in flat(destroyed.stdout)
    assert kube.get("secret", secret_name, namespace) is None
    # cert-manager re-issues the Secret of a Certificate that still exists, and only then: once the
    # Certificate and its CertificateRequests are gone (garbage collection), nothing can bring it back.
    wait_for(
        f"certificate {certificate_name} to be gone", lambda: kube.get(CERTIFICATE, certificate_name, namespace) is None
    )
    wait_for("the certificate requests to be gone", lambda: kube.list(CERTIFICATE_REQUEST, namespace) == [])
    assert [s["metadata"]["name"] for s in kube.list("secret", namespace)] == []
