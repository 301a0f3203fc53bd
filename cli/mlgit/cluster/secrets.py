"""The Secrets an environment needs and mlgit never writes: its API keys and its registry pull secrets.

`mlgit deploy` checks them before it applies anything: a pod that mounts a missing Secret never starts,
and one whose pull secret is missing never pulls, so the rollout would only fail minutes later.
The smoke check reads one API key back from the Secret to call the endpoint as a client would.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from mlgit.cluster.client import Cluster
from mlgit.config.schema import MlgitConfig
from mlgit.errors import MlgitError
from mlgit.targets import REVIEW, Target

PULL_SECRET_TYPE = "kubernetes.io/dockerconfigjson"


@dataclass(frozen=True)
class NeededSecret:
    name: str
    setting: str
    """Where mlgit.yaml names it, for messages."""
    create: str
    """The command that creates it."""
    type: str | None = None
    """The Secret type it must have; None: any."""


def api_key_command(secret: str, namespace: str) -> str:
    return (
        f'kubectl create secret generic {secret} --namespace {namespace} --from-literal=key-1="$(openssl rand -hex 32)"'
    )


def pull_secret_command(secret: str, namespace: str, registry: str) -> str:
    return (
        f"kubectl create secret docker-registry {secret} --namespace {namespace} "
        f"--docker-server={registry} --docker-username=<deploy token username> "
        "--docker-password=<deploy token> (a GitLab deploy token with scope read_registry)"
    )


def needed_secrets(config: MlgitConfig, target: Target) -> list[NeededSecret]:
    """The Secrets `target`'s pods need, as mlgit.yaml names them."""
    needed = []
    auth = config.auth_of(target.env)
    if auth.mode == "api-key":
        assert auth.api_key.secret  # resolved by MlgitConfig
        setting = "review.auth" if target.env == REVIEW else f"environments.{target.env}.auth"
        needed.append(
            NeededSecret(
                auth.api_key.secret,
                f"{setting} (or serving.auth) api_key.secret",
                api_key_command(auth.api_key.secret, target.namespace),
            )
        )
    for secret in config.image.pull_secrets:
        command = pull_secret_command(secret, target.namespace, config.image.registry)
        needed.append(NeededSecret(secret, "image.pull_secrets", command, PULL_SECRET_TYPE))
    return needed


def secret_problem(cluster: Cluster, namespace: str, needed: NeededSecret) -> str | None:
    """What is wrong with a Secret the pods need (missing, of the wrong type, holding no key), or None."""
    live = cluster.get("v1", "Secret", needed.name, namespace)
    if live is None:
        return f"Secret {needed.name} ({needed.setting}) does not exist in namespace {namespace}"
    if needed.type and live.get("type") != needed.type:
        return f"Secret {needed.name} ({needed.setting}) is of type {live.get('type')}, not {needed.type}"
    if not needed.type and not _keys(live):
        return f"Secret {needed.name} ({needed.setting}) in namespace {namespace} holds no key"
    return None


def check_secrets(cluster: Cluster, config: MlgitConfig, target: Target) -> None:
    """Refuse (MlgitError, exit 1) when a Secret the pods need is missing, naming how to create each."""
    needed = needed_secrets(config, target)
    problems = [(n, p) for n in needed if (p := secret_problem(cluster, target.namespace, n))]
    if not problems:
        return
    lines = [p for _, p in problems]
    commands = [n.create for n, _ in problems]
    raise MlgitError(
        f"{target.display_name} needs Secrets that mlgit does not write: " + "; ".join(lines),
        "create them first, then deploy again (nothing was applied):\n  " + "\n  ".join(commands),
    )


def _keys(secret: dict[str, object]) -> dict[str, bytes]:
    """The keys the runtime will accept, by key id: as it does, names starting with '.' are skipped and each
    value is stripped; one that is empty then (or not base64, which the API server never stores) is no key."""
    data = secret.get("data") or {}
    assert isinstance(data, dict)
    keys = {}
    for name, encoded in data.items():
        try:
            value = base64.b64decode(str(encoded), validate=True).strip()
        except binascii.Error:
            continue
        if value and not str(name).startswith("."):
            keys[str(name)] = value
    return keys


def read_api_key(cluster: Cluster, namespace: str, secret: str) -> tuple[str, str]:
    """(key id, key) of the first key of the api-key Secret, by key id: what the smoke check presents."""
    live = cluster.get("v1", "Secret", secret, namespace)
    keys = _keys(live or {})
    if not keys:
        raise MlgitError(
            f"smoke check: the api-key Secret {secret} in namespace {namespace} is missing or holds no key",
            f"create it: {api_key_command(secret, namespace)}",
        )
    for key_id in sorted(keys):
        if keys[key_id].isascii():  # what an HTTP header can carry
            return key_id, keys[key_id].decode()
    raise MlgitError(
        f"smoke check: no key of the api-key Secret {secret} in namespace {namespace} is ASCII, so none can be "
        "sent in an Authorization header",
        f"add one: {api_key_command(secret, namespace)}",
    )
