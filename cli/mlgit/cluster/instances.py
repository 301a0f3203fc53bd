"""What an environment's instances leave on a cluster once mlgit.yaml no longer declares them.

Each instance's deploy prunes within its own selector (it names the instance), so an instance removed from
`environments.<env>.instances` would keep running with no command able to name it. Its objects still carry
the environment's labels and their `mlgit.dev/instance`: that label is how they are found. The deploy of the
whole environment removes them, `mlgit destroy --env` removes everything carrying the environment's labels,
and `mlgit status` warns (docs/instances.md).
"""

from __future__ import annotations

from dataclasses import replace

from rich.markup import escape

from mlgit.cluster import apply
from mlgit.cluster.client import Cluster, connect
from mlgit.cluster.destroy import destroy
from mlgit.config.schema import MlgitConfig
from mlgit.console import out, print_warning
from mlgit.targets import INSTANCE_LABEL, Target, target


def undeclared_instances(cluster: Cluster, env_target: Target, declared: list[str]) -> list[Target]:
    """The instances of `env_target`'s environment that have objects on the cluster and are not in
    `declared`, each as a target selecting exactly its objects."""
    live = {(o["metadata"].get("labels") or {}).get(INSTANCE_LABEL) for o in apply.find_managed(cluster, env_target)}
    return [
        replace(
            env_target,
            name=f"{env_target.model}-{name}",
            instance=f"{env_target.instance}-{name}",
            instance_name=name,
        )
        for name in sorted(n for n in live if n is not None and n not in declared)
    ]


def _gone_from(env: str) -> str:
    return f"no longer in environments.{env}.instances of mlgit.yaml"


def prune_undeclared(config: MlgitConfig, env: str, *, context: str | None, timeout: float, dry_run: bool) -> None:
    """After every declared instance of `env` is deployed: destroy the instances it no longer declares (with a
    dry run: name them)."""
    env_target = target(config, env, context=context)
    cluster = connect(env_target.context, env_target.context_setting)
    for stale in undeclared_instances(cluster, env_target, list(config.environments[env].instances)):
        if dry_run:
            out.print(f"{stale.display_name}: {_gone_from(env)}: a deploy would remove it")
            continue
        out.print(f"{stale.display_name}: {_gone_from(env)}: removing it")
        for change in destroy(cluster, stale, timeout):
            out.print(escape(str(change)))


def destroy_rest(config: MlgitConfig, env: str, *, context: str | None, timeout: float) -> None:
    """After the declared instances of `env`: everything else carrying the environment's labels (undeclared
    instances, the environment's own objects from before it had instances)."""
    env_target = target(config, env, context=context)
    for change in destroy(connect(env_target.context, env_target.context_setting), env_target, timeout):
        out.print(escape(str(change)))


def warn_undeclared(cluster: Cluster, config: MlgitConfig, env: str) -> None:
    """A warning per instance of `env` running on the cluster that mlgit.yaml no longer declares."""
    env_target = target(config, env)
    for stale in undeclared_instances(cluster, env_target, list(config.environments[env].instances)):
        print_warning(
            f"{stale.display_name} runs in namespace {stale.namespace} but is {_gone_from(env)}; "
            f"`mlgit deploy --env {env}` or `mlgit destroy --env {env}` removes it"
        )
