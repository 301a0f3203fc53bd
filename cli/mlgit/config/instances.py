"""Named instances of one environment (per customer, per region): `environments.<env>.instances`.

Every instance runs the environment's pinned image (its one pin file: one promotion moves them all) in the
environment's namespace, with objects of its own named `<name>-<instance>`, its own host and TLS Secret,
replicas, resources and autoscaling. An environment with instances runs only its instances.
"""

from __future__ import annotations

from pydantic import Field

from mlgit.config.serving import AutoscalingConfig, ResourcesConfig
from mlgit.config.types import DnsLabel, DnsName, Strict

LABEL_VALUE_MAX = 63
# What the renderer appends to an instance's <name>-<instance> (its exposure NetworkPolicy, gRPC exposure, TLS
# and serving-certificate Secrets; canary and alert objects, should instances get them): instances `eu` and
# `eu-tls` would both own a <name>-eu-tls. tests/manifests/test_instances.py holds the renderer to this list.
OBJECT_SUFFIXES = (
    "exposure",
    "grpc",
    "grpc-exposure",
    "grpc-tls",
    "tls",
    "serving-cert",
    "canary",
    "canary-exposure",
    "canary-split",
    "alerts",
)


class InstanceConfig(Strict):
    host: DnsName | None = Field(
        None,
        description="Public host (default <name>-<instance>.<the environment host's parent domain>, e.g. "
        "iris-eu.example.com beside prod's iris.example.com); must be inside domain.",
    )
    replicas: int | None = Field(
        None, ge=1, description="Replicas when autoscaling is off (default: the environment's)."
    )
    resources: ResourcesConfig | None = Field(
        None, description="CPU and memory requests and limits of each pod (default: serving.resources)."
    )
    autoscaling: AutoscalingConfig | None = Field(
        None, description="HorizontalPodAutoscaler of this instance (default: the environment's)."
    )


Instances = dict[DnsLabel, InstanceConfig]


def default_host(model: str, instance: str, env_host: str, domain: str) -> str:
    """<model>-<instance> beside the environment's host: in its parent domain, or in `domain` when the
    environment's host is the domain itself (it has no parent inside it)."""
    parent = env_host.split(".", 1)[1] if "." in env_host else ""
    inside = parent == domain or parent.endswith("." + domain)
    return f"{model}-{instance}.{parent if inside else domain}"


def resolve_instances(model: str, domain: str, env: str, env_host: str, instances: Instances) -> None:
    """Fill each instance's default host; ValueError (field path first) for a name too long for its labels,
    for two instances whose object names or hosts are the same."""
    for name, instance in instances.items():
        label = f"{model}-{env}-{name}"
        if len(label) > LABEL_VALUE_MAX:
            raise ValueError(
                f"environments.{env}.instances.{name}: the instance label {label!r} has {len(label)} characters, "
                f"labels allow {LABEL_VALUE_MAX}; use a shorter instance name"
            )
        instance.host = instance.host or default_host(model, name, env_host, domain)
    owners: dict[str, str] = {}
    hosts: dict[str, str] = {}
    for name, instance in instances.items():
        for part in (name, *(f"{name}-{suffix}" for suffix in OBJECT_SUFFIXES)):
            other = owners.setdefault(part, name)
            if other != name:
                raise ValueError(
                    f"environments.{env}.instances.{name}: the object name {model}-{part} would belong to this "
                    f"instance and to instance {other}; rename one of them"
                )
        assert instance.host is not None  # filled above
        other = hosts.setdefault(instance.host, name)
        if other != name:
            raise ValueError(
                f"environments.{env}.instances.{name}.host: {instance.host} is also the host of instance {other}; "
                "each instance needs a host of its own"
            )
