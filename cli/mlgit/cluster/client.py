"""Credentials, the API connection, and turning API failures into MlgitErrors.

Credentials, first match wins: a context named by `--context` or mlgit.yaml `kube_context` (from the
kubeconfig: $KUBECONFIG, else ~/.kube/config); else the kubeconfig's current context when a kubeconfig
exists; else the in-cluster service account (a pod, e.g. a GitLab runner on the cluster). GitLab agent
contexts look like `group/project:agent`. Every failure is exit code 1 with a message, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from kubernetes.dynamic.resource import Resource

from mlgit.errors import MlgitError

# A blackholed API server must not hang a CI job; reads are short calls (we poll, never watch).
REQUEST_TIMEOUT = (10.0, 60.0)  # connect, read (seconds)


def _default_timeout(request: Callable[..., Any]) -> Callable[..., Any]:
    """The client passes `_request_timeout=None` on every call, which overrides any pool default."""

    @functools.wraps(request)
    def with_timeout(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("_request_timeout") is None:
            kwargs["_request_timeout"] = REQUEST_TIMEOUT
        return request(*args, **kwargs)

    return with_timeout


@dataclass
class Cluster:
    """A connection to one API server, with the context it came from (for messages)."""

    dynamic: DynamicClient
    context: str
    _resources: dict[tuple[str, str], Resource] = field(default_factory=dict)

    @property
    def api_client(self) -> client.ApiClient:
        return self.dynamic.client

    def resource(self, api_version: str, kind: str) -> Resource | None:
        """The served resource for apiVersion/kind, or None when the cluster does not serve it."""
        key = (api_version, kind)
        if key not in self._resources:
            with api_errors(f"discover {api_version} {kind}", self.context):
                try:
                    self._resources[key] = self.dynamic.resources.get(api_version=api_version, kind=kind)
                except ResourceNotFoundError:
                    return None
        return self._resources[key]

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        """The live object, or None when it (or its kind) does not exist."""
        resource = self.resource(api_version, kind)
        if resource is None:
            return None
        with api_errors(f"read {kind} {name}", self.context):
            try:
                return resource.get(name=name, namespace=namespace if resource.namespaced else None).to_dict()
            except client.ApiException as exc:
                if exc.status == 404:
                    return None
                raise

    def list(self, api_version: str, kind: str, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
        """Objects of a kind in a namespace matching a label selector; [] when the kind is not served."""
        resource = self.resource(api_version, kind)
        if resource is None:
            return []
        with api_errors(f"list {kind} in namespace {namespace}", self.context):
            found = resource.get(namespace=namespace, label_selector=selector).to_dict()
        items = found.get("items") or []
        for item in items:  # list items may omit these; callers key objects by them
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items


def _kubeconfig_files() -> str | None:
    # Read at call time: the client library freezes $KUBECONFIG when it is imported.
    explicit = os.environ.get("KUBECONFIG")
    if explicit:
        return explicit
    default = Path.home() / ".kube" / "config"
    return str(default) if default.is_file() else None


def _contexts(files: str) -> tuple[list[str], str | None]:
    """The context names of the (colon-separated) kubeconfig files, and the current one: first file wins.

    Read without the client's loader, which refuses a kubeconfig without current-context, the way a
    GitLab agent's KUBECONFIG comes.
    """
    names: list[str] = []
    current = None
    # As kubectl does, a file of the list that does not exist is skipped; only all of them missing is an error.
    paths = [Path(p).expanduser() for p in files.split(os.pathsep) if p]
    if not any(path.is_file() for path in paths):
        raise MlgitError(f"no kubeconfig file exists among {files}", "check KUBECONFIG")
    for path in filter(Path.is_file, paths):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(document, dict):
            raise MlgitError(f"the kubeconfig {path} is not a YAML mapping", "check KUBECONFIG")
        names += [str(c["name"]) for c in document.get("contexts") or [] if isinstance(c, dict) and c.get("name")]
        current = current or document.get("current-context") or None
    return list(dict.fromkeys(names)), current


def _choose(context: str | None, files: str, setting: str) -> str:
    """The context to use: the one asked for, else the current one, else the only one."""
    names, current = _contexts(files)
    known = f"contexts in the kubeconfig: {', '.join(names) or 'none'}"
    if context is not None:
        if context not in names:
            raise MlgitError(
                f"no context {context!r} in the kubeconfig ({files})", f"{known}; fix {setting} or --context"
            )
        return context
    if current:
        return current
    if len(names) == 1:
        return names[0]
    raise MlgitError(
        f"the kubeconfig ({files}) has no current context, and {setting} is not set",
        f"set {setting} in mlgit.yaml (a GitLab agent's context looks like group/project:agent), "
        f"or pass --context; {known}",
    )


def connect(context: str | None = None, setting: str = "kube_context") -> Cluster:
    """Connect with the credentials described in the module docstring; discovery runs here.

    `setting` names where `context` comes from in mlgit.yaml (environments.<env>.kube_context), for messages.
    """
    configuration = client.Configuration()
    files = _kubeconfig_files()
    try:
        if files is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
            used = "in-cluster service account"
        elif files is None:
            raise MlgitError(
                "no Kubernetes credentials: no kubeconfig ($KUBECONFIG or ~/.kube/config) and not in a pod",
                "set KUBECONFIG, or run where a GitLab agent provides one",
            )
        else:
            used = _choose(context, files, setting)
            config.load_kube_config(config_file=files, context=used, client_configuration=configuration)
    except ConfigException as exc:
        raise MlgitError(f"cannot load Kubernetes credentials: {exc}", f"check KUBECONFIG and {setting}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise MlgitError(f"cannot read the kubeconfig ({files}): {exc}", "check KUBECONFIG") from None
    api = client.ApiClient(configuration)
    api.rest_client.request = _default_timeout(api.rest_client.request)
    with api_errors("connect", used):
        dynamic = DynamicClient(api)
    return Cluster(dynamic=dynamic, context=used)


def server_message(exc: client.ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


def _invalid_hint(message: str) -> str:
    if "field is immutable" in message:
        return (
            "Kubernetes cannot change this field of a live object: delete it and deploy again "
            "(`mlgit destroy --env ENV`, then `mlgit deploy --env ENV`; the environment is down in between)"
        )
    return (
        "the object comes from deploy/ (rendered from mlgit.yaml): fix the field in mlgit.yaml and run "
        "`mlgit render`, or undo the hand edit in deploy/ (`mlgit render --check` shows it)"
    )


@contextlib.contextmanager
def api_errors(action: str, context: str) -> Iterator[None]:
    """Map API and connection failures inside the block to one clear MlgitError (exit 1)."""
    try:
        yield
    except client.ApiException as exc:
        message = server_message(exc)
        if exc.status == 403:
            raise MlgitError(
                f"forbidden: cannot {action} (context {context}): {message}",
                "the credentials lack RBAC permission for this; grant it to the service account or GitLab agent",
            ) from None
        if exc.status == 401:
            raise MlgitError(
                f"unauthorized (context {context}): {message}", "the credentials expired or are wrong"
            ) from None
        if exc.status == 422:
            raise MlgitError(f"the API server rejected {action}: {message}", _invalid_hint(message)) from None
        if exc.status == 404 and "namespaces" in message and "not found" in message:
            raise MlgitError(
                f"cannot {action}: {message}",
                "create the namespace, or set create_namespace: true for this environment in mlgit.yaml",
            ) from None
        raise MlgitError(f"cannot {action} (context {context}): HTTP {exc.status}: {message}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise MlgitError(
            f"cannot reach the Kubernetes API server (context {context}) to {action}: {reason}",
            "check the cluster address in the kubeconfig, the network, and that the cluster is up",
        ) from None
