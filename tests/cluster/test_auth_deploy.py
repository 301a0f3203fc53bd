"""`mlgit deploy` of an environment with endpoint auth, on a real control plane: the Secrets mlgit never
writes (the API keys, the registry pull secrets) are checked before anything is applied, the pods mount
the keys, and the smoke check calls the model with one of them, as a client would."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import Result

from mlgit.config.load import load_project
from tests.cluster.conftest import flat, image, serve_model, update_config
from tests.cluster.kube import Kube

PULL_SECRET = "registry-credentials"


@pytest.fixture
def prod(name: str, model_repo: Path, kube: Kube) -> str:
    """The prod namespace, existing, with an image pull secret required by mlgit.yaml."""
    kube.create_namespace(f"{name}-prod")
    update_config(model_repo, {"image": {"pull_secrets": [PULL_SECRET]}})
    return f"{name}-prod"


@pytest.fixture
def key(model_repo: Path, kwok: tuple[str, int], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The model, served where kwok sends port-forwards, answering only callers that present this key."""
    value = secrets.token_hex(32)
    monkeypatch.setenv("MLGIT_SERVING_AUTH_MODE", "api-key")
    monkeypatch.setenv("MLGIT_SERVING_API_KEYS", value)
    for _ in serve_model(model_repo, kwok):
        yield value


def test_a_deploy_without_the_secrets_is_refused_with_how_to_create_them(
    name: str, prod: str, model_repo: Path, mlgit: Callable[..., Result], kube: Kube
) -> None:
    result = mlgit("deploy", "--env", "prod", "--image", image(name), "--skip-smoke")
    assert result.exit_code == 1, result.output
    err = flat(result.stderr)
    assert f"Secret {name}-api-keys (environments.prod.auth (or serving.auth) api_key.secret) does not exist" in err
    assert f"kubectl create secret generic {name}-api-keys --namespace {prod}" in err
    registry = load_project(model_repo).config.image.registry
    assert f"kubectl create secret docker-registry {PULL_SECRET} --namespace {prod} --docker-server={registry} " in err
    assert "nothing was applied" in err and "Traceback" not in result.output
    assert kube.list("all", prod) == [] and kube.get("serviceaccount", name, prod) is None


def test_a_secret_of_the_wrong_type_is_refused(name: str, prod: str, mlgit: Callable[..., Result], kube: Kube) -> None:
    kube.run("create", "secret", "generic", f"{name}-api-keys", "-n", prod, "--from-literal=key-1=x")
    kube.run("create", "secret", "generic", PULL_SECRET, "-n", prod, "--from-literal=token=x")
    result = mlgit("deploy", "--env", "prod", "--image", image(name), "--skip-smoke")
    assert result.exit_code == 1, result.output
    assert f"Secret {PULL_SECRET} (image.pull_secrets) is of type Opaque, not kubernetes.io/dockerconfigjson" in flat(
        result.stderr
    )
    assert kube.get("deployment", name, prod) is None


def test_a_key_secret_of_blank_values_is_refused(
    name: str, prod: str, mlgit: Callable[..., Result], kube: Kube
) -> None:
    """The runtime strips each key and ignores an empty one: such a Secret would crash-loop every pod."""
    kube.run("create", "secret", "generic", f"{name}-api-keys", "-n", prod, "--from-literal=key-1=  \n")
    kube.run("create", "secret", "docker-registry", PULL_SECRET, "-n", prod, "--docker-server=r.example.com",
             "--docker-username=u", "--docker-password=p")  # fmt: skip
    result = mlgit("deploy", "--env", "prod", "--image", image(name), "--skip-smoke")
    assert result.exit_code == 1, result.output
    assert f"Secret {name}-api-keys" in flat(result.stderr) and "holds no key" in flat(result.stderr)
    assert kube.get("deployment", name, prod) is None


def test_with_the_secrets_the_pods_mount_the_keys_and_the_smoke_check_presents_one(
    name: str, prod: str, key: str, mlgit: Callable[..., Result], kube: Kube
) -> None:
    # key-0 sorts first: the smoke check presents it, and only it opens the server.
    kube.run("create", "secret", "generic", f"{name}-api-keys", "-n", prod, f"--from-literal=key-0={key}",
             "--from-literal=key-1=not-the-servers-key")  # fmt: skip
    kube.run("create", "secret", "docker-registry", PULL_SECRET, "-n", prod, "--docker-server=registry.example.com",
             "--docker-username=deploy-token", "--docker-password=x")  # fmt: skip
    result = mlgit("deploy", "--env", "prod", "--image", image(name))
    assert result.exit_code == 0, result.output
    assert f"model {name} is ready and answered the sample as expected" in flat(result.stdout)
    deployment = kube.get("deployment", name, prod)
    assert deployment is not None
    pod = deployment["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["MLGIT_SERVING_AUTH_MODE"] == "api-key"
    assert env["MLGIT_SERVING_API_KEYS_DIR"] == "/var/run/secrets/mlgit/api-keys"
    assert env["MLGIT_SERVING_METRICS_PORT"] == "9090" and env["MLGIT_SERVING_DOCS"] == "false"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["api-keys"]["secret"]["secretName"] == f"{name}-api-keys"
    mounts = {m["name"]: m for m in server["volumeMounts"]}
    assert mounts["api-keys"] == {"name": "api-keys", "mountPath": env["MLGIT_SERVING_API_KEYS_DIR"], "readOnly": True}
    account = kube.get("serviceaccount", name, prod)
    assert account is not None and account["imagePullSecrets"] == [{"name": PULL_SECRET}]
