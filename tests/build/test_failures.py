"""Failures a user meets, without an engine: no engine at DOCKER_HOST, a failing build step, a refused push."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgit.build.builder import BuildRequest, buildkit_failure, legacy_result
from mlgit.build.push import push_failure, pushed_digest, registry_credentials
from mlgit.errors import MlgitError
from mlgit.main import app

REQUEST = BuildRequest(context_dir=Path("/repo"), dockerfile=Path("/repo/Dockerfile"), tag="x/y:1", hint="look up")
# BuildKit's --progress=plain output of a failing RUN step, as docker 20.10 prints it.
BUILDKIT_FAILED_RUN = """\
#4 [1/2] FROM docker.io/local/python:3.11-slim
#4 sha256:c048a73838a3116fe0d8f30821360eb45885e1e8e61fe6962d1624ad02573e90
#4 CACHED

#5 [2/2] RUN pip install nothing-such
#5 sha256:02b95543dd78d88f7d3a1de2c9d2ef216b217fd81800bd395a8c9fdc9868de99
#5 0.430 ERROR: No matching distribution found for nothing-such
#5 ERROR: executor failed running [/bin/sh -c pip install nothing-such]: exit code: 1
------
 > [2/2] RUN pip install nothing-such:
------
executor failed running [/bin/sh -c pip install nothing-such]: exit code: 1
""".splitlines()


@pytest.mark.parametrize("command", [["build", "--tag", "1.0"], ["serve", "--docker", "--image", "x/y:1"]])
def test_no_engine_names_docker_host_and_how_to_start_one(model_repo: Path, command: list[str]) -> None:
    dead = f"unix://{model_repo}/no-such-docker.sock"
    result = CliRunner().invoke(app, [command[0], str(model_repo), *command[1:]], env={"DOCKER_HOST": dead})
    assert result.exit_code == 1, result.output
    assert f"no Docker engine answers at {dead} (DOCKER_HOST)" in result.output
    assert "dockerd" in result.output and "DOCKER_HOST=" in result.output


def test_buildkit_failure_names_the_step_and_shows_its_output() -> None:
    error = buildkit_failure(BUILDKIT_FAILED_RUN, REQUEST)
    assert error.message == "docker build of /repo/Dockerfile failed at step [2/2] RUN pip install nothing-such"
    assert error.problems == [
        "ERROR: No matching distribution found for nothing-such",
        "ERROR: executor failed running [/bin/sh -c pip install nothing-such]: exit code: 1",
    ]
    assert error.hint == "look up"


def test_buildkit_failure_before_any_step_shows_the_last_line() -> None:
    lines = [
        "#1 [internal] load build definition from Dockerfile",
        "",
        "failed to solve: dockerfile parse error line 2",
    ]
    assert buildkit_failure(lines, REQUEST).message.endswith("failed: failed to solve: dockerfile parse error line 2")


def test_legacy_builder_stream() -> None:
    shown: list[str] = []
    ok = [{"stream": "Step 1/2 : FROM x\n"}, {"stream": " ---> abc\n"}, {"aux": {"ID": "sha256:feed"}}]
    assert legacy_result(ok, REQUEST, shown.append) == "sha256:feed"
    assert shown == ["Step 1/2 : FROM x", " ---> abc"]
    failing = [
        {"stream": "Step 2/2 : RUN false\n"},
        {"stream": " ---> Running in 1234\n"},
        {"stream": "step output\n"},
        {"error": "The command '/bin/sh -c false' returned a non-zero code: 1",
         "errorDetail": {"code": 1, "message": "The command '/bin/sh -c false' returned a non-zero code: 1"}},
    ]  # fmt: skip
    with pytest.raises(MlgitError) as caught:
        legacy_result(failing, REQUEST, shown.append)
    assert caught.value.message == "docker build of /repo/Dockerfile failed at Step 2/2 : RUN false"
    assert caught.value.problems == ["step output", "The command '/bin/sh -c false' returned a non-zero code: 1"]


def test_push_stream_digest_and_refusal() -> None:
    digest = "sha256:" + "ab" * 32
    stream = [
        {"status": "The push refers to repository [r/x]"},
        {"status": "Pushing", "progressDetail": {"current": 1, "total": 2}, "id": "l1"},
        {"status": f"t: digest: {digest} size: 1150"},
        {"aux": {"Tag": "t", "Digest": digest, "Size": 1150}, "progressDetail": {}},
    ]
    shown: list[str] = []
    assert pushed_digest(stream, shown.append) == digest
    assert shown == ["The push refers to repository [r/x]", f"t: digest: {digest} size: 1150"]
    with pytest.raises(MlgitError, match="denied: requested access"):
        pushed_digest([{"error": "denied: requested access to the resource is denied"}], shown.append)


@pytest.mark.parametrize(
    ("detail", "hint_part"),
    [
        ("unauthorized: authentication required", "MLGIT_REGISTRY_USER"),
        ("denied: requested access to the resource is denied", "docker login"),
        ("Get http://127.0.0.1:9/v2/: dial tcp 127.0.0.1:9: connect: connection refused", "cannot reach"),
        ("manifest invalid", "accepts this image"),
    ],
)
def test_push_failure_hints(detail: str, hint_part: str) -> None:
    error = push_failure("r.example.com/x:1", "r.example.com", detail)
    assert error.message == f"the registry refused the push of r.example.com/x:1: {detail}"
    assert hint_part in (error.hint or "")


def test_credentials_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLGIT_REGISTRY_USER", "MLGIT_REGISTRY_PASSWORD", "CI_REGISTRY", "CI_REGISTRY_USER",
                 "CI_REGISTRY_PASSWORD"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    assert registry_credentials("registry.gitlab.com") is None  # the docker config decides
    monkeypatch.setenv("CI_REGISTRY", "registry.gitlab.com")
    monkeypatch.setenv("CI_REGISTRY_USER", "gitlab-ci-token")
    monkeypatch.setenv("CI_REGISTRY_PASSWORD", "job-token")
    assert registry_credentials("registry.gitlab.com") == {"username": "gitlab-ci-token", "password": "job-token"}
    assert registry_credentials("other.example.com") is None  # the job token is never sent elsewhere
    monkeypatch.setenv("MLGIT_REGISTRY_USER", "robot")
    monkeypatch.setenv("MLGIT_REGISTRY_PASSWORD", "secret")
    assert registry_credentials("registry.gitlab.com") == {"username": "robot", "password": "secret"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--runtime", "--runtime-image", "r:1"], "--runtime-image is for model builds"),
        (["--base-image", "b:1"], "--base-image only applies with --runtime"),
        (["--tag", "1", "--secret", "ca"], "write it as id=NAME,src=FILE"),
        (["--tag", "1", "--secret", "id=ca,src=/no/such/file"], "is not a file"),
    ],
)
def test_usage_errors(model_repo: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["build", str(model_repo), *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_serve_image_without_docker_is_a_usage_error(model_repo: Path) -> None:
    result = CliRunner().invoke(app, ["serve", str(model_repo), "--image", "x/y:1"])
    assert result.exit_code == 2 and "--image only applies with --docker" in result.output
