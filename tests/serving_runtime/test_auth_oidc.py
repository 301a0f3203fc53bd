"""OIDC bearer tokens in the serving runtime, against an identity provider served by the test itself
(discovery document and JWKS on a local HTTP server; RSA and EC keys made here): never a real one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import numpy as np
import pytest
import tritonclient.http as triton
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mlgit_serving.app import create_app
from mlgit_serving.auth_oidc import JWKS_MIN_REFETCH_S
from mlgit_serving.errors import ConfigurationError
from mlgit_serving.settings import ServerSettings

from .conftest import IRIS_SAMPLE, RunningServer, classifier, start_server, stop_server, write_model

AUDIENCE = "mlgit-iris"
SCOPE = "models:infer"


class IdentityProvider:
    """/.well-known/openid-configuration and /jwks.json on 127.0.0.1, with keys the test can rotate."""

    def __init__(self) -> None:
        self.signing: dict[str, Any] = {}  # kid -> private key
        self.published: list[str] = []  # kids in the JWKS
        self.requests: list[str] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.requests.append(self.path)
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": provider.issuer, "jwks_uri": f"{provider.issuer}/jwks.json"}
                elif self.path == "/jwks.json":
                    body = {"keys": [provider.jwk(kid) for kid in provider.published]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_key(self, kid: str, kind: str = "RSA", publish: bool = True) -> None:
        key = rsa.generate_private_key(65537, 2048) if kind == "RSA" else ec.generate_private_key(ec.SECP256R1())
        self.signing[kid] = key
        if publish:
            self.published.append(kid)

    def jwk(self, kid: str) -> dict[str, Any]:
        key = self.signing[kid]
        algorithm = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
        return {**json.loads(algorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig"}

    def fetches(self) -> int:
        return self.requests.count("/jwks.json")

    def token(
        self, kid: str = "rsa-1", algorithm: str | None = None, header_kid: str | None = None, **overrides: Any
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "svc-batch-scoring",
            "iat": now,
            "exp": now + 300,
            "scope": f"openid {SCOPE}",
            "tenant": ["acme", "other"],
            **overrides,
        }
        claims = {k: v for k, v in claims.items() if v is not None}
        key = self.signing[kid]
        algorithm = algorithm or ("RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256")
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": header_kid or kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(idp: IdentityProvider, header: dict[str, Any], key: bytes | None = None) -> str:
    """A token PyJWT would refuse to make: alg none, or HS256 keyed with the issuer's public key."""
    claims = jwt.decode(idp.token(), options={"verify_signature": False})
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = b"" if key is None else hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    provider.add_key("rsa-1")
    provider.add_key("ec-1", kind="EC")
    yield provider
    provider.close()


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    write_model(root, "iris", {"1": classifier(0.0)}, {}, IRIS_SAMPLE)
    return root


def _oidc_server(repository: Path, issuer: str, **settings: Any) -> RunningServer:
    running = start_server(
        repository,
        auth_mode="oidc",
        oidc_issuer=issuer,
        oidc_audience=AUDIENCE,
        oidc_required_scopes=[SCOPE],
        oidc_required_claims={"tenant": "acme"},
        oidc_leeway_seconds=60,
        access_log=True,
        **settings,
    )
    running.wait_loaded()
    return running


@pytest.fixture(scope="module")
def oidc(repository: Path, idp: IdentityProvider) -> Iterator[RunningServer]:
    running = _oidc_server(repository, idp.issuer)
    yield running
    stop_server(running)


@pytest.fixture
def http(oidc: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=oidc.url, timeout=30) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_valid_tokens_of_either_key_type_are_accepted(
    idp: IdentityProvider, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="mlgit_serving.requests"):
        for token in (idp.token("rsa-1"), idp.token("ec-1"), idp.token("rsa-1", algorithm="PS256")):
            assert http.get("/v2/models/iris", headers=bearer(token)).status_code == 200
            response = http.post("/v2/models/iris/infer", json=IRIS_SAMPLE, headers=bearer(token))
            assert response.status_code == 200, response.text
    assert {r.identity for r in caplog.records if r.getMessage() == "inference request"} == {"svc-batch-scoring"}
    assert "/.well-known/openid-configuration" in idp.requests  # the JWKS URL came from discovery
    metrics = http.get("/metrics", headers=bearer(idp.token())).text
    assert 'mlgit_inference_requests_by_identity_total{identity="svc-batch-scoring",model="iris"}' in metrics


def test_tritonclient_with_a_token(idp: IdentityProvider, oidc: RunningServer) -> None:
    client = triton.InferenceServerClient(url=oidc.address)
    try:
        tensor = triton.InferInput("input", [1, 4], "FP32")
        tensor.set_data_from_numpy(np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32))
        result = client.infer("iris", [tensor], headers=bearer(idp.token()))
        assert result.as_numpy("label").tolist() == [0]
    finally:
        client.close()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"aud": "another-service"}, f"the token is not for audience {AUDIENCE}"),
        ({"iss": "https://evil.example"}, "the token is not from issuer"),
        ({"exp": int(time.time()) - 120}, "the token has expired"),  # past the 60 s leeway
        ({"sub": None}, "the token has no 'sub' claim"),
        ({"exp": None}, "the token has no 'exp' claim"),
    ],
)
def test_tokens_with_wrong_claims_are_invalid(
    idp: IdentityProvider, http: httpx.Client, overrides: dict[str, Any], message: str
) -> None:
    response = http.post("/v2/models/iris/infer", json=IRIS_SAMPLE, headers=bearer(idp.token(**overrides)))
    assert response.status_code == 401
    assert response.json()["error"].startswith(message)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_clock_skew_within_the_leeway_is_allowed(idp: IdentityProvider, http: httpx.Client) -> None:
    now = int(time.time())
    assert http.get("/v2", headers=bearer(idp.token(exp=now - 30))).status_code == 200
    assert http.get("/v2", headers=bearer(idp.token(iat=now + 30, nbf=now + 30))).status_code == 200
    assert http.get("/v2", headers=bearer(idp.token(nbf=now + 600))).status_code == 401


@pytest.mark.parametrize(
    ("overrides", "scope_param"),
    [({"scope": "openid"}, f'scope="{SCOPE}"'), ({"scope": None, "scp": ["openid"]}, f'scope="{SCOPE}"')],
)
def test_a_missing_scope_is_403(idp: IdentityProvider, http: httpx.Client, overrides: dict, scope_param: str) -> None:
    response = http.get("/v2/models/iris", headers=bearer(idp.token(**overrides)))
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and scope_param in challenge
    assert response.json() == {"error": f"the token lacks scope {SCOPE}"}
    assert http.get("/v2", headers=bearer(idp.token(scope=None, scp=[SCOPE]))).status_code == 200


def test_a_missing_required_claim_is_403(idp: IdentityProvider, http: httpx.Client) -> None:
    for tenant in (None, "other", ["other"]):
        response = http.get("/v2", headers=bearer(idp.token(tenant=tenant)))
        assert response.status_code == 403 and "'tenant' claim" in response.json()["error"]
    assert http.get("/v2", headers=bearer(idp.token(tenant="acme"))).status_code == 200


def test_alg_none_and_hmac_with_the_public_key_are_refused(idp: IdentityProvider, http: httpx.Client) -> None:
    public_pem = (
        idp.signing["rsa-1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for token in (
        _unsigned(idp, {"alg": "none", "typ": "JWT", "kid": "rsa-1"}),
        _unsigned(idp, {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, key=public_pem),
        _unsigned(idp, {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, key=json.dumps(idp.jwk("rsa-1")).encode()),
    ):
        response = http.get("/v2", headers=bearer(token))
        assert response.status_code == 401 and "is not accepted" in response.json()["error"]


def test_a_forged_signature_and_garbage_are_refused(idp: IdentityProvider, http: httpx.Client) -> None:
    idp.add_key("forger", publish=False)
    forged = idp.token("forger", header_kid="rsa-1")  # a key the issuer does not hold, under its key id
    for token in (forged, "not-a-jwt", "a.b.c"):
        response = http.get("/v2", headers=bearer(token))
        assert response.status_code == 401 and 'error="invalid_token"' in response.headers["www-authenticate"]


def test_key_rotation_is_picked_up_and_made_up_key_ids_do_not_hammer_the_provider(
    repository: Path, idp: IdentityProvider
) -> None:
    running = _oidc_server(repository, idp.issuer, oidc_jwks_url=f"{idp.issuer}/jwks.json")
    try:
        with httpx.Client(base_url=running.url, timeout=30) as client:
            assert client.get("/v2", headers=bearer(idp.token("rsa-1"))).status_code == 200
            idp.add_key("rsa-2", publish=False)
            started, fetches = time.monotonic(), idp.fetches()
            for i in range(20):
                token = idp.token("rsa-2", header_kid="rsa-2" if i % 2 else secrets.token_hex(8))
                response = client.get("/v2", headers=bearer(token))
                assert response.status_code == 401, response.text
                assert response.json()["error"] == "the token is signed with a key the issuer does not publish"
            # one refetch per JWKS_MIN_REFETCH_S at most, however many unknown key ids arrive
            assert idp.fetches() - fetches <= 1 + (time.monotonic() - started) / JWKS_MIN_REFETCH_S
            idp.published.append("rsa-2")  # the provider rotates: the new key is published
            deadline = time.monotonic() + 30 + JWKS_MIN_REFETCH_S
            while client.get("/v2", headers=bearer(idp.token("rsa-2"))).status_code != 200:
                assert time.monotonic() < deadline, "the rotated key was not picked up"
                time.sleep(0.2)
            withdrawn = idp.token("rsa-1")
            assert client.get("/v2", headers=bearer(withdrawn)).status_code == 200  # verified, now remembered
            idp.published.remove("rsa-1")  # the provider withdraws a key: at the next fetch its tokens fail
            deadline = time.monotonic() + 30 + JWKS_MIN_REFETCH_S
            while client.get("/v2", headers=bearer(withdrawn)).status_code != 401:
                client.get("/v2", headers=bearer(idp.token("rsa-2", header_kid=secrets.token_hex(8))))  # a fetch
                assert time.monotonic() < deadline, "a withdrawn key's token is still accepted"
                time.sleep(0.2)
    finally:
        stop_server(running)
        idp.published[:] = ["rsa-1", "ec-1"]


def test_an_unreachable_provider_is_503_not_401(repository: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    running = _oidc_server(repository, f"http://127.0.0.1:{closed_port}")
    try:
        header = _b64(json.dumps({"alg": "RS256", "kid": "k"}).encode())
        token = f"{header}.{_b64(json.dumps({'sub': 'x'}).encode())}.{_b64(b'sig')}"
        response = httpx.get(f"{running.url}/v2", headers=bearer(token), timeout=30)
        assert response.status_code == 503 and response.headers["retry-after"]
        assert "signing keys are unavailable" in response.json()["error"]
    finally:
        stop_server(running)


def test_oidc_needs_issuer_and_audience(repository: Path) -> None:
    with pytest.raises(ConfigurationError, match="MLGIT_SERVING_OIDC_ISSUER and MLGIT_SERVING_OIDC_AUDIENCE"):
        create_app(ServerSettings(model_repository=repository, auth_mode="oidc"))


def test_signing_keys_are_never_taken_over_http_from_an_https_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fetch itself is replaced here (no HTTPS identity provider can be served without a trusted
    certificate): what is checked is the rule applied to the discovery document's jwks_uri."""
    from mlgit_serving import auth_oidc

    documents = {
        "https://idp.example/.well-known/openid-configuration": {
            "issuer": "https://idp.example",
            "jwks_uri": "http://idp.example/jwks.json",
        }
    }
    monkeypatch.setattr(auth_oidc, "_get_json", documents.__getitem__)
    with pytest.raises(ValueError, match=r"jwks_uri 'http://idp\.example/jwks\.json' is not https"):
        auth_oidc.JwksCache("https://idp.example", None)._fetch()
