"""Canary merge requests end to end against a local bare origin (and `responses` for GitLab's API): start,
weight, promote and abort each change only the pin file; refusals exit 1; --merge merges through the API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from typer.testing import CliRunner

from mlgit import render
from mlgit.config.load import load_project
from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.main import app
from mlgit.manifests.canary_state import CanaryState, canary_in_text
from tests.golden import GoldenFiles
from tests.promote.support import DIGEST_B, IMAGE_A, IMAGE_B, Remote, git

PIN = "deploy/overlays/staging/image/kustomization.yaml"
BRANCH = "mlgit/canary-staging"
API = "https://gitlab.example.com/api/v4"
MRS = f"{API}/projects/42/merge_requests"
OPEN_MR = {"id": 900, "iid": 3, "web_url": "https://gitlab.example.com/ml/model/-/merge_requests/3"}
IMAGE_C = IMAGE_A.replace("a" * 64, "c" * 64)
VERDICT = {
    "version": 2,
    "verdict": "pass",
    "reasons": ["error rate: 0 <= 0.01", "p99 ratio: 1.1 <= 1.25", "p50 ratio: 1 <= 1.25"],
    "environment": "staging",
    "namespace": "linear-staging",
    "model": "linear",
    "prometheus": "http://prometheus.monitoring:9090",
    "evaluated_at": 1764400000.0,
    "images": {"stable": IMAGE_A, "canary": IMAGE_B},
    "thresholds": {
        "window": "10m",
        "min_requests": 100,
        "max_error_rate": 0.01,
        "max_p99_ratio": 1.25,
        "max_p50_ratio": 1.25,
        "max_drift": None,
    },
    "stable": {
        "requests": {"query": "sum(a)", "value": 900.0},
        "errors": {"query": "sum(b)", "value": 0.0},
        "p50_seconds": {"query": "q50s", "value": 0.002},
        "p99_seconds": {"query": "q99s", "value": 0.02},
        "error_rate": 0.0,
    },
    "canary": {
        "requests": {"query": "sum(c)", "value": 100.0},
        "errors": {"query": "sum(d)", "value": 0.0},
        "p50_seconds": {"query": "q50c", "value": 0.002},
        "p99_seconds": {"query": "q99c", "value": 0.022},
        "error_rate": 0.0,
    },
    "checks": [
        {"name": "error rate", "value": 0.0, "limit": 0.01, "passed": True, "note": "0 <= 0.01"},
        {"name": "p99 ratio", "value": 1.1, "limit": 1.25, "passed": True, "note": "1.1 <= 1.25"},
        {"name": "p50 ratio", "value": 1.0, "limit": 1.25, "passed": True, "note": "1 <= 1.25"},
    ],
}


def mlgit(remote: Remote, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [*args, str(remote.repo)])
    return result.exit_code, result.stdout, result.stderr


def merge(remote: Remote, branch: str) -> None:
    """What pressing Merge does with a fast-forward merge: main becomes the merge request's commit."""
    git("fetch", "-q", "origin", branch, cwd=remote.repo)
    git("merge", "-q", "--ff-only", "FETCH_HEAD", cwd=remote.repo)
    remote.push()


def state(remote: Remote, rev: str) -> CanaryState:
    return canary_in_text(remote.show(rev, PIN).encode(), "staging", f"{PIN} at {rev}")


@pytest.fixture
def unpinned_remote(model_repo: Path, tmp_path: Path) -> Remote:
    """The model repository with a canary in staging (weight 10, 2 replicas), nothing pinned yet."""
    path = model_repo / "mlgit.yaml"
    doc = read_yaml(path)
    gateway = {"kind": "gateway", "gateway": {"name": "public", "namespace": "gateways"}}
    staging = {"canary": {"weight": 10, "replicas": 2}, "exposure": gateway}
    doc["environments"] = {"dev": {}, "staging": staging, "prod": {}}
    path.write_text(dump_yaml(doc), encoding="utf-8")
    render.render(load_project(model_repo, warn=False))
    return Remote(model_repo, tmp_path / "origin.git")


@pytest.fixture
def canary_remote(unpinned_remote: Remote) -> Remote:
    """unpinned_remote with staging's stable pinned to IMAGE_A through a merged promotion."""
    remote = unpinned_remote
    code, _, err = mlgit(remote, "promote", "--from", "dev", "--to", "staging", "--image", IMAGE_A)
    assert code == 0, err
    merge(remote, "mlgit/promote-staging")
    return remote


def test_start_weight_promote_each_change_only_the_pin_file(canary_remote: Remote) -> None:
    remote = canary_remote
    built_from = git("rev-parse", "HEAD", cwd=remote.repo)
    code, out, err = mlgit(remote, "promote", "--from", "dev", "--to", "staging", "--canary", "--image", IMAGE_B)
    assert code == 0, err
    assert f"pushed {BRANCH}" in out
    assert remote.pushes()[-1][:3] == [
        "merge_request.create",
        "merge_request.target=main",
        f"merge_request.title=Canary {DIGEST_B[:19]} in staging at 10% (from dev)",
    ]
    assert git("diff", "--name-only", "main", BRANCH, cwd=remote.origin) == PIN
    assert state(remote, BRANCH) == CanaryState(IMAGE_A, IMAGE_B, 10, 2)
    message = git("log", "-1", "--format=%B", BRANCH, cwd=remote.origin)
    assert f"Mlgit-Canary-Source-Commit: {built_from}" in message
    assert "Mlgit-Canary: staging start" in message
    merge(remote, BRANCH)

    code, out, err = mlgit(remote, "canary", "weight", "--env", "staging", "50")
    assert code == 0, err
    assert git("diff", "--name-only", "main", BRANCH, cwd=remote.origin) == PIN
    assert state(remote, BRANCH) == CanaryState(IMAGE_A, IMAGE_B, 50, 2)
    assert remote.pushes()[-1][2] == "merge_request.title=Canary weight in staging: 10% -> 50%"
    merge(remote, BRANCH)

    code, out, err = mlgit(remote, "canary", "promote", "--env", "staging")
    assert code == 0, err
    assert git("diff", "--name-only", "main", BRANCH, cwd=remote.origin) == PIN
    assert state(remote, BRANCH) == CanaryState(IMAGE_B, IMAGE_B, 0, 0)
    message = git("log", "-1", "--format=%B", BRANCH, cwd=remote.origin)
    assert f"Mlgit-Source-Commit: {built_from}" in message  # the canary's source is now the stable's
    merge(remote, BRANCH)

    # A later promotion from staging finds the commit the promoted canary was built from.
    (remote.repo / "README.md").write_text("newer work\n", encoding="utf-8")
    remote.commit("newer work")
    remote.push()
    code, out, err = mlgit(remote, "promote", "--from", "staging", "--to", "prod", "--dry-run")
    assert code == 0, err
    assert f"| built from commit | - | `{built_from[:12]}` |" in out
    assert f"image: `{IMAGE_B}`" in out or IMAGE_B in out


def test_a_canary_the_policies_would_deny_after_the_merge_exits_3(unpinned_remote: Remote) -> None:
    """The policies judge the pin file the merge request commits: with staging's stable unpinned, a canary
    of IMAGE_B leaves the stable Deployment without a digest (MLGIT-IMG-005), whatever the canary's digest."""
    remote = unpinned_remote
    code, out, err = mlgit(remote, "promote", "--from", "dev", "--to", "staging", "--canary", "--image", IMAGE_B,
                           "--dry-run")  # fmt: skip
    assert code == 3, out + err
    assert "MLGIT-IMG-005" in err
    assert "as this merge request would change it" in " ".join(err.split())


def test_refusals_exit_1(canary_remote: Remote) -> None:
    remote = canary_remote
    code, _, err = mlgit(remote, "canary", "weight", "--env", "staging", "20")
    assert code == 1
    assert "staging runs no canary (no canary image pinned)" in " ".join(err.split())
    code, _, err = mlgit(remote, "promote", "--from", "staging", "--to", "prod", "--canary", "--image", IMAGE_B)
    assert code == 1
    assert "environment prod runs no canary: environments.prod.canary is not set" in " ".join(err.split())
    code, _, err = mlgit(remote, "promote", "--from", "dev", "--to", "staging", "--replace", "--image", IMAGE_B)
    assert code == 1
    assert "--replace and --verdict go with --canary" in err

    assert mlgit(remote, "promote", "--from", "dev", "--to", "staging", "--canary", "--image", IMAGE_B)[0] == 0
    merge(remote, BRANCH)
    code, _, err = mlgit(remote, "promote", "--from", "dev", "--to", "staging", "--canary", "--image", IMAGE_C)
    assert code == 1
    assert f"staging already runs a canary of {IMAGE_B} at 10% (2 replicas)" in " ".join(err.split())
    code, _, err = mlgit(remote, "promote", "--from", "dev", "--to", "staging", "--canary", "--image", IMAGE_C,
                         "--replace")  # fmt: skip
    assert code == 0, err
    assert state(remote, BRANCH) == CanaryState(IMAGE_A, IMAGE_C, 10, 2)

    # A plain promotion would replace the stable under the running canary.
    code, _, err = mlgit(remote, "promote", "--from", "dev", "--to", "staging", "--image", IMAGE_C)
    assert code == 1
    assert f"staging runs a canary of {IMAGE_B} at 10%" in " ".join(err.split())
    assert "not replacing its stable image under it" in " ".join(err.split())

    failed = remote.repo.parent / "failed.json"
    failed.write_text(json.dumps({**VERDICT, "verdict": "fail"}), encoding="utf-8")
    code, _, err = mlgit(remote, "canary", "promote", "--env", "staging", "--verdict", str(failed))
    assert code == 1
    assert "the analysis of the canary of staging failed: not promoting it" in " ".join(err.split())
    # A verdict of another environment, or of other digests than the pin file's, decides nothing here.
    for changes, field in (({"environment": "prod"}, "environment is 'prod', not 'staging'"),
                           ({"images": {"stable": IMAGE_A, "canary": IMAGE_C}}, f"images.canary is {IMAGE_C}"),
                           ({"images": None}, "no `images`")):  # fmt: skip
        other = remote.repo.parent / "other.json"
        other.write_text(json.dumps({**VERDICT, **changes}), encoding="utf-8")
        for command in (["promote"], ["weight", "50"]):
            code, _, err = mlgit(remote, "canary", *command, "--env", "staging", "--verdict", str(other))
            assert code == 1, command
            assert f"--verdict {other}: {field}" in " ".join(err.split()), command
    assert mlgit(remote, "canary", "weight", "--env", "staging", "101")[0] == 2


def test_nothing_to_change_exits_0(canary_remote: Remote) -> None:
    remote = canary_remote
    pushes = len(remote.pushes())
    code, out, _ = mlgit(remote, "canary", "abort", "--env", "staging")
    assert code == 0
    assert "nothing to change: staging runs no canary: nothing to abort" in out
    code, out, _ = mlgit(remote, "promote", "--from", "dev", "--to", "staging", "--canary", "--image", IMAGE_A)
    assert code == 0
    assert "as its stable image: nothing to try as a canary" in out
    assert len(remote.pushes()) == pushes


def test_abort_merge_needs_a_token(canary_remote: Remote) -> None:
    remote = canary_remote
    assert mlgit(remote, "promote", "--from", "dev", "--to", "staging", "--canary", "--image", IMAGE_B)[0] == 0
    merge(remote, BRANCH)
    code, _, err = mlgit(remote, "canary", "abort", "--env", "staging", "--merge")
    assert code == 1
    assert "merging the canary merge request of staging at once needs an API token" in " ".join(err.split())


@responses.activate
def test_abort_with_merge_opens_and_merges_through_the_api(
    canary_remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = canary_remote
    assert mlgit(remote, "promote", "--from", "dev", "--to", "staging", "--canary", "--image", IMAGE_B)[0] == 0
    merge(remote, BRANCH)
    monkeypatch.setenv("MLGIT_GITLAB_TOKEN", "glpat-secret")
    monkeypatch.setenv("CI_SERVER_URL", "https://gitlab.example.com")
    monkeypatch.setenv("CI_PROJECT_ID", "42")
    responses.get(MRS, json=[])  # no open merge request of the branch yet
    responses.get(MRS, json=[OPEN_MR])  # the one just opened, found to merge it
    responses.post(MRS, status=201, json=OPEN_MR)
    merge_url = f"{MRS}/3/merge"
    # GitLab checks mergeability after the push: the first try is refused, the second merges.
    responses.put(merge_url, status=405, json={"message": "405 Method Not Allowed"})
    responses.put(merge_url, json={**OPEN_MR, "state": "merged"})
    verdict = remote.repo.parent / "verdict.json"
    verdict.write_text(json.dumps({**VERDICT, "verdict": "fail"}), encoding="utf-8")
    code, out, err = mlgit(remote, "canary", "abort", "--env", "staging", "--merge", "--verdict", str(verdict))
    assert code == 0, err
    assert f"merged merge request {OPEN_MR['web_url']}: Abort the canary of staging" in out
    assert [c.request.method for c in responses.calls if c.request.url.startswith(merge_url)] == ["PUT", "PUT"]
    created = json.loads(next(c.request.body for c in responses.calls if c.request.method == "POST"))
    assert "**Canary analysis**: **fail**" in created["description"]
    assert state(remote, BRANCH) == CanaryState(IMAGE_A, IMAGE_B, 0, 0)
    assert git("diff", "--name-only", "main", BRANCH, cwd=remote.origin) == PIN


def test_dry_run_output(canary_remote: Remote, golden: GoldenFiles) -> None:
    """`mlgit canary weight --dry-run --verdict`: the merge request it would open, byte for byte."""
    remote = canary_remote
    assert mlgit(remote, "promote", "--from", "dev", "--to", "staging", "--canary", "--image", IMAGE_B)[0] == 0
    merge(remote, BRANCH)
    before = git("status", "--porcelain", cwd=remote.repo)
    pushes = len(remote.pushes())
    verdict = remote.repo.parent / "verdict.json"
    verdict.write_text(json.dumps(VERDICT), encoding="utf-8")
    code, out, err = mlgit(remote, "canary", "weight", "--env", "staging", "50", "--dry-run", "--verdict", str(verdict))
    assert code == 0, err
    golden.check("canary/weight-dry-run", {"stdout.txt": out})
    assert remote.branch(BRANCH) is not None and len(remote.pushes()) == pushes
    assert git("status", "--porcelain", cwd=remote.repo) == before
