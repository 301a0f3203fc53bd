"""The whole product, with every component real: `mlgit init` -> `mlgit build` (Docker engine, pushed to the
local registry) -> `deploy --env dev` (server-side apply on the control plane, rollout, the smoke check
through the API server's port-forward to the built image running in Docker) -> `promote --from dev --to
staging` (a local bare origin, push options as GitLab sees them) -> merge -> `deploy --env staging` of the
pinned digest -> `status` -> `rollback` -> `destroy` of both.

kwok's fake nodes run no containers: the pod port that kwok forwards to is where this test runs the image
(tests/cluster/control-plane.sh, MLGIT_TEST_POD_ADDRESS), under the pod's constraints (non-root,
read-only root filesystem), so the answer the smoke check compares comes from the built image.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlgit.build.run import Published, start_container, stop_container, wait_ready
from mlgit.config.load import load_project
from tests.build.fixtures import mlgit_ok
from tests.cluster.conftest import update_config
from tests.cluster.kube import Kube, containers
from tests.promote.support import IDENTITY, Remote, git

pytestmark = pytest.mark.integration


@pytest.fixture
def served_image(docker_client: Any, repo: Path, image_ref: str, kwok: tuple[str, int]) -> Iterator[str]:
    """The built image running where kwok forwards pod ports."""
    config = load_project(repo).config
    container = start_container(docker_client, image_ref, config, Published(*kwok))
    try:
        wait_ready(container, f"http://{kwok[0]}:{kwok[1]}", timeout=120)
        yield image_ref
        assert stop_container(container, config.serving.drain_seconds) == 0
    finally:
        container.remove(force=True)


@pytest.fixture
def remote(tmp_path: Path, name: str, local_registry: str, kube: Kube) -> Iterator[Remote]:
    """The model repository, committed, with a bare origin that records push options as GitLab would."""
    target = tmp_path / "repo"
    mlgit_ok(
        "init", "--example", "iris-classifier", "--name", name, "--registry", f"{local_registry}/mlgit-e2e", target
    )
    # The example names its GitLab agents' contexts; this cluster is the kubeconfig's current context.
    no_agent = {"kube_context": None}
    update_config(target, {"environments": {"dev": no_agent, "staging": no_agent, "prod": no_agent}})
    yield Remote(target, tmp_path / "origin.git")
    for env in ("dev", "staging"):
        kube.run("delete", "namespace", f"{name}-{env}", "--wait=false", "--ignore-not-found")


@pytest.fixture
def repo(remote: Remote) -> Path:
    return remote.repo


@pytest.fixture
def image_ref(repo: Path, cpu_runtime_image: str) -> str:
    """`mlgit build --push` as the build-image job runs it: tagged with the commit, pushed, printed by digest."""
    built = mlgit_ok("build", repo, "--runtime-image", cpu_runtime_image, "--push").strip()
    assert "@sha256:" in built
    return built


def test_init_build_deploy_promote_deploy_status_rollback_destroy(
    name: str,
    remote: Remote,
    repo: Path,
    image_ref: str,
    served_image: str,
    kube: Kube,
    cluster_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    kubeconfig = {"KUBECONFIG": str(cluster_kubeconfig)}
    for env in ("dev", "staging"):
        kube.create_namespace(f"{name}-{env}")

    deployed = mlgit_ok(
        "deploy", "--env", "dev", "--image", image_ref, "--dotenv", tmp_path / "deploy.env", repo, env=kubeconfig
    )
    assert f"model {name} is ready and answered the sample as expected" in deployed
    recorded = dict(line.split("=", 1) for line in (tmp_path / "deploy.env").read_text().splitlines())
    assert recorded["MLGIT_DEPLOYED_IMAGE"] == image_ref

    # The promote-to-staging job: MLGIT_IMAGE from build-image's dotenv, the smoke latency from deploy-dev's.
    jobs = {**kubeconfig, **recorded, "MLGIT_IMAGE": image_ref, **IDENTITY}  # the job commits the pin
    promoted = mlgit_ok("promote", "--from", "dev", "--to", "staging", repo, env=jobs)
    assert "pushed mlgit/promote-staging" in promoted
    assert remote.pushes()[-1][:2] == ["merge_request.create", "merge_request.target=main"]
    git("fetch", "-q", "origin", "mlgit/promote-staging", cwd=repo)
    git("merge", "-q", "--ff-only", "FETCH_HEAD", cwd=repo)  # pressing Merge
    remote.push()
    digest = image_ref.split("@")[1]
    assert f"digest: {digest}" in (repo / "deploy/overlays/staging/image/kustomization.yaml").read_text()

    staging = mlgit_ok("deploy", "--env", "staging", repo, env=kubeconfig)  # no --image: the digest pinned in git
    assert "answered the sample as expected" in staging
    live = kube.get("deployment", name, f"{name}-staging")
    assert live is not None and containers(live) == {"server": image_ref}

    status = json.loads(mlgit_ok("status", "--json", repo, env=kubeconfig))
    records = {r["environment"]: r for r in status}
    assert records["staging"]["in_sync"] is True and records["staging"]["running_digest"] == digest
    assert records["staging"]["replicas"] == {"ready": 1, "desired": 1}
    assert records["dev"]["running_digest"] == digest and records["prod"]["deployed"] is False

    # A settings change makes a second dev revision; rollback returns to the first.
    update_config(repo, {"serving": {"drain_seconds": 9}})
    mlgit_ok("deploy", "--env", "dev", "--image", image_ref, repo, env=kubeconfig)
    rolled = mlgit_ok("rollback", "--env", "dev", repo, env=kubeconfig)
    assert "rolled back dev to revision 1" in rolled
    live = kube.get("deployment", name, f"{name}-dev")
    assert live is not None
    env = {e["name"]: e.get("value") for e in live["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLGIT_SERVING_DRAIN_SECONDS"] == "20"

    for environment in ("dev", "staging"):
        mlgit_ok("destroy", "--env", environment, repo, env=kubeconfig)
        selector = f"app.kubernetes.io/managed-by=mlgit,mlgit.dev/model={name}"
        for kind in ("deployment", "replicaset", "pod", "service", "ingress"):
            assert kube.list(kind, f"{name}-{environment}", selector) == [], (environment, kind)
