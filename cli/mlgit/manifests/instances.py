"""The overlays of an environment's named instances: deploy/instances/<env>/<instance>/.

Each wraps the environment's overlay (deploy/overlays/<env>: base, patches and the one image pin) in `app/`
with the name suffix -<instance>, and adds beside it what is the instance's own: its exposure (host, TLS
Secret), autoscaling, replicas and resources. kustomize refuses an overlay inside the folder it builds on,
hence deploy/instances/ next to deploy/overlays/; the instances hold no state of their own, so render may
rewrite or delete them freely.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mlgit.config.schema import MlgitConfig
from mlgit.files import RenderedFile
from mlgit.manifests.openshift import SERVING_CERT_MOUNT, reencrypts, serving_cert_secret
from mlgit.targets import Target, instance_target
from mlgit.templating import render_template

INSTANCES = "deploy/instances"


def instance_dir(root: Path, env: str, instance: str) -> Path:
    """The folder `kubectl kustomize` builds for one instance."""
    return root / INSTANCES / env / instance


def instance_targets(config: MlgitConfig, env: str) -> list[Target]:
    return [instance_target(config, env, name) for name in config.environments[env].instances]


def instance_files(
    config: MlgitConfig, tgt: Target, *, exposure: str | None, autoscaling: str | None, highly_available: bool
) -> Iterator[RenderedFile]:
    """The files of instance `tgt` (an instance Target); `exposure` and `autoscaling` are the texts of
    its exposure.yaml and autoscaling.yaml, as the environment overlays have them (None: none)."""
    assert tgt.instance_name is not None
    folder = f"{INSTANCES}/{tgt.env}/{tgt.instance_name}"
    names = {"env": tgt.env, "instance": tgt.instance_name}
    app_patches = []
    if tgt.resources is not None:
        app_patches.append("resources.yaml")
        amounts = {
            section: {k: v for k, v in values.items() if v is not None}
            for section, values in tgt.resources.model_dump().items()
        }
        text = render_template(
            "manifests", "overlays/instance/app/resources.yaml.j2", name=config.name, resources=amounts, **names
        )
        yield RenderedFile(f"{folder}/app/resources.yaml", text)
    if reencrypts(tgt):
        # The environment's patch names the Secret after the environment (<name>-serving-cert), and the service
        # CA issues one Secret for one Service: each instance's Service asks for, and its pods mount, its own.
        app_patches.append("serving-cert.yaml")
        text = render_template(
            "manifests",
            "overlays/env/serving-cert.yaml.j2",
            name=config.name,
            secret=serving_cert_secret(tgt),
            mount=SERVING_CERT_MOUNT,
        )
        yield RenderedFile(f"{folder}/app/serving-cert.yaml", text)
    components = ["../../../../components/high-availability"] if highly_available else []
    app = render_template(
        "manifests", "overlays/instance/app/kustomization.yaml.j2", components=components, patches=app_patches, **names
    )
    yield RenderedFile(f"{folder}/app/kustomization.yaml", app)
    resources, patches = [], []
    for path, text in (("exposure.yaml", exposure), ("autoscaling.yaml", autoscaling)):
        if text is not None:
            resources.append(path)
            yield RenderedFile(f"{folder}/{path}", text)
    if config.monitoring_of(tgt.env).enabled:
        patches.append("monitoring.yaml")
        text = render_template(
            "manifests",
            "overlays/instance/monitoring.yaml.j2",
            name=tgt.name,
            namespace=tgt.namespace,
            instance_label=tgt.instance,
        )
        yield RenderedFile(f"{folder}/monitoring.yaml", text)
    kustomization = render_template(
        "manifests",
        "overlays/instance/kustomization.yaml.j2",
        name=tgt.name,
        namespace=tgt.namespace,
        resources=resources,
        patches=patches,
        replicas=None if tgt.autoscaling else tgt.replicas,
        instance_label=tgt.instance,
        labels=tgt.labels,
        **names,
    )
    yield RenderedFile(f"{folder}/kustomization.yaml", kustomization)
