"""deploy-dev then destroy-dev of the generated pipeline, run for real by gitlab-ci-local's shell executor
against the control plane, smoke check included (through the port-forward to the model this test serves).

The jobs run the generated scripts unchanged (`mlgit deploy --env dev --image "$MLGIT_IMAGE" --dotenv
deploy.env`, `mlgit destroy --env dev --yes`); only what GitLab would provide is given as variables: the
image build-image would have exported and the kubeconfig a GitLab agent would. mlgit.yaml names the
agent's context for dev while the kubeconfig's current context is unreachable, so the job only passes
when `mlgit deploy`/`destroy` resolve the context from mlgit.yaml.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.conftest import admin_context, image, write_kubeconfig
from tests.cluster.kube import Kube, containers
from tests.pipelines.support import Pipeline, configure

pytestmark = pytest.mark.integration

AGENT_CONTEXT = "ml/linear:dev-agent"


def test_deploy_and_destroy_jobs_run_against_the_control_plane(
    name: str,
    namespace: str,
    model_repo: Path,
    model_server: subprocess.Popen[bytes],
    cluster_kubeconfig: Path,
    gitlab_ci_local: str,
    kube: Kube,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Port 9 (discard) refuses connections: a job that used the current context would fail at once.
    contexts = {
        "elsewhere": {"cluster": {"server": "http://127.0.0.1:9"}, "user": {"token": "x"}},
        AGENT_CONTEXT: admin_context(cluster_kubeconfig),
    }
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", contexts, "elsewhere")
    environments = {"dev": {"kube_context": AGENT_CONTEXT}, "staging": {}, "prod": {}}
    # The jobs call `mlgit`: the one installed next to this interpreter.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    pipeline = Pipeline(configure(model_repo, {"environments": environments}), tmp_path / "ci", gitlab_ci_local)
    given = [
        arg
        for variable in (f"MLGIT_IMAGE={image(name)}", f"KUBECONFIG={kubeconfig}")
        for arg in ("--variable", variable)
    ]

    def run_job(job: str) -> subprocess.CompletedProcess[str]:
        # Only this job: its needs (build-image and the tests) would need buildah; MLGIT_IMAGE stands in.
        result = pipeline.run("--force-shell-executor", "--manual", job, *given, job)
        output = result.stdout[-4000:] + result.stderr[-2000:]
        # Manual jobs are allow_failure: a failed one is a WARN and gitlab-ci-local still exits 0.
        assert result.returncode == 0 and re.search(rf"^ PASS +{job}$", result.stdout, re.M), output
        return result

    deployed = run_job("deploy-dev")
    assert "rollout: 1/1 updated, 1/1 available" in deployed.stderr  # the job's stderr comes out here
    assert f"model {name} is ready and answered the sample as expected" in deployed.stdout
    assert f"deployed dev: https://{name}.dev.models.example.com" in deployed.stdout
    live = kube.get("deployment", name, namespace)
    assert live is not None and containers(live) == {"server": image(name)}
    dotenv = (pipeline.repo / "deploy.env").read_text()
    assert dotenv.startswith(f"MLGIT_DEPLOYED_IMAGE={image(name)}\nMLGIT_SMOKE_LATENCY_MS=")

    destroyed = run_job("destroy-dev")
    assert f"deployment.apps/{name} -n {namespace} deleted" in destroyed.stdout
    selector = f"app.kubernetes.io/managed-by=mlgit,mlgit.dev/model={name}"
    for kind in ("deployment", "replicaset", "pod", "service", "ingress", "configmap"):
        assert kube.list(kind, namespace, selector) == [], kind
