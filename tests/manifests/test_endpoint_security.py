"""What each environment exposes and to whom, as the built manifests say it: routes to /v2 and the enabled
extras only, the server's auth variables and the api-key Secret's mount, /metrics on its own port, and the
registry pull secrets (issue 16)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlgit import render
from mlgit.config.load import load_project
from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.main import app
from mlgit.manifests.build import build_env

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) is not installed")


def _configure(repo: Path, changes: dict[str, Any]) -> None:
    path = repo / "mlgit.yaml"
    document = read_yaml(path)
    for key, value in changes.items():
        document[key] = {**document.get(key, {}), **value}
    path.write_text(dump_yaml(document), encoding="utf-8")
    render.render(load_project(repo, warn=False))


def _objects(repo: Path, env: str, slug: str | None = None) -> dict[str, dict[str, Any]]:
    built = build_env(load_project(repo, warn=False), env, slug=slug)
    return {
        o["kind"]: o for o in built if not (o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("exposure"))
    }


def _server(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (server,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    return server


def _env(objects: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in _server(objects)["env"]}


def _paths(ingress: dict[str, Any]) -> list[tuple[str, str]]:
    (rule,) = ingress["spec"]["rules"]
    return [(p["path"], p["pathType"]) for p in rule["http"]["paths"]]


def test_production_routes_only_the_api_and_asks_for_a_key(model_repo: Path) -> None:
    prod = _objects(model_repo, "prod")
    assert _paths(prod["Ingress"]) == [("/v2", "Prefix")]
    env = _env(prod)
    assert env["MLGIT_SERVING_AUTH_MODE"] == "api-key" and env["MLGIT_SERVING_DOCS"] == "false"
    assert env["MLGIT_SERVING_UI"] == "false"
    assert env["MLGIT_SERVING_API_KEYS_DIR"] == "/var/run/secrets/mlgit/api-keys"
    pod = prod["Deployment"]["spec"]["template"]["spec"]
    assert {"name": "api-keys", "secret": {"secretName": "linear-api-keys"}} in pod["volumes"]
    assert not [o for o in build_env(load_project(model_repo, warn=False), "prod") if o["kind"] == "Secret"]


def test_dev_and_review_apps_route_and_serve_the_docs_and_ui_openly(model_repo: Path) -> None:
    for env, slug in (("dev", None), ("review", "my-branch")):
        objects = _objects(model_repo, env, slug)
        assert _paths(objects["Ingress"]) == [
            ("/v2", "Prefix"),
            ("/docs", "Prefix"),
            ("/openapi.json", "Exact"),
            ("/ui", "Prefix"),
        ]
        assert _env(objects)["MLGIT_SERVING_DOCS"] == _env(objects)["MLGIT_SERVING_UI"] == "true"
        assert _env(objects)["MLGIT_SERVING_AUTH_MODE"] == "none"
        assert "MLGIT_SERVING_API_KEYS_DIR" not in _env(objects)


def test_metrics_have_a_port_of_their_own_that_only_prometheus_reaches(model_repo: Path) -> None:
    _configure(model_repo, {"monitoring": {"enabled": True}})
    objects = _objects(model_repo, "staging")
    ports = {p["name"]: p["containerPort"] for p in _server(objects)["ports"]}
    assert ports == {"http": 8080, "metrics": 9090} and _env(objects)["MLGIT_SERVING_METRICS_PORT"] == "9090"
    template = objects["Deployment"]["spec"]["template"]["metadata"]
    assert template["annotations"]["prometheus.io/port"] == "9090"
    assert {p["name"]: p["targetPort"] for p in objects["Service"]["spec"]["ports"]} == {
        "http": "http",
        "metrics": "metrics",
    }
    (scrape,) = objects["NetworkPolicy"]["spec"]["ingress"]
    assert scrape["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert [e["port"] for e in objects["ServiceMonitor"]["spec"]["endpoints"]] == ["metrics"]
    exposure = next(
        o
        for o in build_env(load_project(model_repo, warn=False), "staging")
        if o["metadata"]["name"].endswith("exposure")
    )
    assert [r["ports"] for r in exposure["spec"]["ingress"]] == [[{"port": "http", "protocol": "TCP"}]]


def test_environments_and_review_apps_override_auth_and_extras(model_repo: Path) -> None:
    oidc = {
        "mode": "oidc",
        "oidc": {
            "issuer": "https://id.acme.io/realms/ml",
            "audience": "linear",
            "required_scopes": ["infer", "models:read"],
            "required_claims": {"groups": "ml", "verified": True},
        },
    }
    _configure(
        model_repo,
        {
            "serving": {"auth": oidc},
            "environments": {
                "dev": {"auth": {"mode": "none"}},
                "staging": {},
                "prod": {"exposure": {"public": ["docs"]}},
            },
            "review": {"auth": {"mode": "api-key", "api_key": {"secret": "review-keys"}}},
            "image": {"pull_secrets": ["gitlab-registry"]},
        },
    )
    prod = _objects(model_repo, "prod")
    expected = {
        "MLGIT_SERVING_AUTH_MODE": "oidc",
        "MLGIT_SERVING_OIDC_ISSUER": "https://id.acme.io/realms/ml",
        "MLGIT_SERVING_OIDC_AUDIENCE": "linear",
        "MLGIT_SERVING_OIDC_REQUIRED_SCOPES": "infer,models:read",
        "MLGIT_SERVING_OIDC_REQUIRED_CLAIMS": '{"groups": "ml", "verified": true}',
        "MLGIT_SERVING_DOCS": "true",
        "MLGIT_SERVING_UI": "false",  # listed extras replace the default: docs alone
    }
    assert {name: _env(prod).get(name) for name in expected} == expected
    assert "MLGIT_SERVING_OIDC_JWKS_URL" not in _env(prod)
    assert [p for p, _ in _paths(prod["Ingress"])] == ["/v2", "/docs", "/openapi.json"]
    assert _env(_objects(model_repo, "dev"))["MLGIT_SERVING_AUTH_MODE"] == "none"
    assert _env(_objects(model_repo, "staging"))["MLGIT_SERVING_AUTH_MODE"] == "oidc"
    review = _objects(model_repo, "review", "my-branch")
    assert review["Deployment"]["metadata"]["name"] == "linear-my-branch"
    # One Secret for every review app of the namespace: the branch suffix does not rename it.
    assert {"name": "api-keys", "secret": {"secretName": "review-keys"}} in review["Deployment"]["spec"]["template"][
        "spec"
    ]["volumes"]
    assert review["ServiceAccount"]["imagePullSecrets"] == [{"name": "gitlab-registry"}]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"exposure": {"public": ["grpc"]}}, "exposure.public.0: Input should be 'docs' or 'ui'"),
        ({"serving": {"auth": {"mode": "oidc"}}}, "serving.auth.oidc: mode oidc needs"),
        (
            {"serving": {"auth": {"mode": "oidc", "oidc": {"issuer": "http://id.acme.io", "audience": "x"}}}},
            "serving.auth.oidc.issuer: 'http://id.acme.io' is not an https:// URL",
        ),
        ({"serving": {"auth": {"mode": "token"}}}, "serving.auth.mode: Input should be 'none', 'api-key' or 'oidc'"),
        (
            {"serving": {"auth": {"mode": "api-key", "oidc": {"issuer": "https://id.acme.io", "audience": "x"}}}},
            "serving.auth.oidc: given, but mode is api-key; set mode: oidc",
        ),
        (
            {"serving": {"auth": {"mode": "none", "api_key": {"secret": "keys"}}}},
            "serving.auth.api_key: given, but mode is none; set mode: api-key",
        ),
        ({"serving": {"port": 9090}}, "9090 is the metrics port"),
        ({"image": {"pull_secrets": ["Not_A_Name"]}}, "image.pull_secrets.0"),
    ],
)
def test_bad_settings_name_their_field(model_repo: Path, changes: dict[str, Any], message: str) -> None:
    path = model_repo / "mlgit.yaml"
    document = read_yaml(path)
    for key, value in changes.items():
        document[key] = {**document.get(key, {}), **value}
    path.write_text(dump_yaml(document), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(model_repo)])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split()), result.output
