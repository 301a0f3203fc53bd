"""deploy-dev then destroy-dev, run for real by gitlab-ci-local's shell executor against the API server
emulator (tests/cluster/emulator.py), which this test process serves on 127.0.0.1 from a thread.

The jobs run the generated scripts unchanged (`mlgit deploy --env dev --image "$MLGIT_IMAGE" --dotenv
deploy.env`, `mlgit destroy --env dev --yes`); only what GitLab would provide is given as variables:
the image build-image would have exported, the kubeconfig a GitLab agent would, and
MLGIT_DEPLOY_SKIP_SMOKE, since the emulator has no pods to port-forward to. mlgit.yaml names a GitLab
agent context for dev while the kubeconfig's current context is unreachable, so the job only passes
when `mlgit deploy`/`destroy` resolve the context from mlgit.yaml.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import IMAGE, Emulated, write_kubeconfig
from tests.cluster.controller import DeploymentController
from tests.cluster.emulator import ApiServer, matches
from tests.pipelines.support import Pipeline, configure

pytestmark = pytest.mark.integration

AGENT_CONTEXT = "ml/linear:dev-agent"
NAMESPACE = "linear-dev"
SELECTOR = "app.kubernetes.io/managed-by=mlgit,mlgit.dev/model=linear,mlgit.dev/environment=dev"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[tuple[ApiServer, Path]]:
    """The emulator with the Deployment controller stand-in, dev's namespace, and a kubeconfig for it."""
    emulated = Emulated()
    emulated.server.on_write.append(DeploymentController())
    emulated.server.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    # Port 9 (discard) refuses connections: a job that used the current context would fail at once.
    servers = {"elsewhere": "http://127.0.0.1:9", AGENT_CONTEXT: emulated.url}
    yield emulated.server, write_kubeconfig(tmp_path / "kubeconfig", servers, "elsewhere")
    emulated.close()


def _applied_by_mlgit(server: ApiServer) -> dict[str, dict[str, Any]]:
    """`Kind/name` -> object, for the live objects of linear's dev environment that mlgit applied (not the
    ReplicaSets the controller stand-in made from the Deployment's labelled pod template)."""
    found = {}
    for (_, namespace, name), obj in server.objects._objects.items():
        if obj.deleted or namespace != NAMESPACE:
            continue
        meta = obj.raw["metadata"]
        applied = any(m["manager"] == "mlgit" for m in meta.get("managedFields") or [])
        if applied and matches(meta.get("labels") or {}, SELECTOR):
            found[f"{obj.raw['kind']}/{name}"] = obj.raw
    return found


def test_deploy_and_destroy_jobs_run_against_the_emulator(
    emulator: tuple[ApiServer, Path],
    pipeline_repo: Callable[[str], Path],
    gitlab_ci_local: str,
    tmp_path: Path,
) -> None:
    server, kubeconfig = emulator
    source = shutil.copytree(pipeline_repo("linear-default"), tmp_path / "source")
    environments = {"dev": {"kube_context": AGENT_CONTEXT}, "staging": {}, "prod": {}}
    pipeline = Pipeline(configure(source, {"environments": environments}), tmp_path / "ci", gitlab_ci_local)
    # The kubernetes client caches discovery per server URL in the temp dir; emulator ports get reused.
    (tmp_path / "tmp").mkdir()
    variables = [f"MLGIT_IMAGE={IMAGE}", f"KUBECONFIG={kubeconfig}", "MLGIT_DEPLOY_SKIP_SMOKE=1"]
    variables.append(f"TMPDIR={tmp_path / 'tmp'}")
    given = [arg for variable in variables for arg in ("--variable", variable)]

    def run_job(job: str) -> subprocess.CompletedProcess[str]:
        # Only this job: its needs (build-image and the tests) would need buildah; MLGIT_IMAGE stands in.
        result = pipeline.run("--force-shell-executor", "--manual", job, *given, job)
        output = result.stdout[-4000:] + result.stderr[-2000:]
        # Manual jobs are allow_failure: a failed one is a WARN and gitlab-ci-local still exits 0.
        assert result.returncode == 0 and re.search(rf"^ PASS +{job}$", result.stdout, re.M), output
        return result

    deployed = run_job("deploy-dev")
    assert "rollout: 1/1 updated, 1/1 available" in deployed.stderr  # the job's stderr comes out here
    assert "smoke check skipped (MLGIT_DEPLOY_SKIP_SMOKE=1)" in deployed.stdout
    assert "deployed dev: https://linear.dev.models.example.com" in deployed.stdout
    objects = _applied_by_mlgit(server)
    kinds = {"ServiceAccount", "ConfigMap", "Service", "Deployment", "NetworkPolicy", "Ingress"}
    assert {name.split("/")[0] for name in objects} == kinds
    containers = objects["Deployment/linear"]["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == [IMAGE]
    assert (pipeline.repo / "deploy.env").read_text() == f"MLGIT_DEPLOYED_IMAGE={IMAGE}\n"

    destroyed = run_job("destroy-dev")
    assert "deployment.apps/linear -n linear-dev deleted" in destroyed.stdout
    assert _applied_by_mlgit(server) == {}
