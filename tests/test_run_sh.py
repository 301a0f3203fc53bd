"""tests/run.sh, one step function at a time: sourced (nothing runs), with stub commands where the real
ones would take minutes (mmdebstrap) or need another machine (a non-root laptop, no kubectl)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

RUN_SH = REPO_ROOT / "tests" / "run.sh"
BASH = shutil.which("bash") or "/bin/bash"
QUICK_LOOP = "MLGIT_SKIP_INTEGRATION_SETUP=1 bash tests/run.sh -m 'not integration'"


def bash(
    script: str, env: dict[str, str | None] | None = None, user: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`source tests/run.sh`, then SCRIPT, in a fresh bash (as USER when given; needs root).
    ENV is added to this process's environment; a None value removes that variable."""
    environment = {**os.environ, **(env or {})}
    argv = [BASH, "-c", f'source "$1"\n{script}', "bash", str(RUN_SH)]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *argv]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in environment.items() if v is not None},
    )


def test_sourcing_defines_the_steps_and_runs_nothing() -> None:
    result = bash("declare -F main python_packages docker_engine base_image check_kubectl >/dev/null && echo defined")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "defined\n"
    assert result.stderr == ""  # no step ran, nothing was logged


# ---------------------------------------------------------------------------------------------------------
# base image: a tag proves nothing


STUB_DOCKER = """#!/bin/bash
# A docker client over a state folder: image present / image runs.
echo "docker $*" >>"$STATE/calls"
case "$1 $2" in
  "image inspect") [[ -e $STATE/present ]] ;;
  "run --rm")
    if [[ -e $STATE/runs ]]; then exit 0; fi
    echo 'exec: "/bin/sh": stat /bin/sh: no such file or directory' >&2; exit 127 ;;
  "rmi -f") rm -f "$STATE/present" "$STATE/runs" ;;
  "load -q") cat >/dev/null; touch "$STATE/present"; [[ -e $STATE/cache-is-broken ]] || touch "$STATE/runs" ;;
  "import -c") touch "$STATE/present" "$STATE/runs" ;;
  save*) echo image ;;
  *) exit 0 ;;  # tag, push
esac
"""
STUB_MMDEBSTRAP = '#!/bin/bash\necho "mmdebstrap" >>"$STATE/calls"\necho rootfs\n'


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    for name, text in (("docker", STUB_DOCKER), ("mmdebstrap", STUB_MMDEBSTRAP)):
        (tmp_path / name).write_text(text, encoding="utf-8")
        (tmp_path / name).chmod(0o755)
    (tmp_path / "state").mkdir()
    (tmp_path / "cache").mkdir()
    return tmp_path


def run_base_image(stubs: Path, *state: str, cached: bool) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    for name in state:
        (stubs / "state" / name).touch()
    script = f"""
DOCKER={stubs}/docker SYSTEM_CACHE={stubs}/cache REGISTRY_ADDR=127.0.0.1:1
need_root() {{ :; }}  # the stub mmdebstrap needs no root
recipe=$(printf '%s\\n' "${{MMDEBSTRAP_ARGS[@]}}" "$IMPORT_CHANGE" | sha256sum | cut -c1-12)
{'echo cached | gzip >"$SYSTEM_CACHE/local-python-3.11-slim-$recipe.tar.gz"' if cached else ""}
base_image
"""
    result = bash(script, env={"STATE": str(stubs / "state"), "PATH": f"{stubs}:{os.environ['PATH']}"})
    calls = (stubs / "state" / "calls").read_text(encoding="utf-8").splitlines()
    return result, [" ".join(c.split()[:2]) for c in calls]


def test_a_base_image_that_runs_is_kept(stubs: Path) -> None:
    result, calls = run_base_image(stubs, "present", "runs", cached=True)
    assert result.returncode == 0, result.stderr
    assert "present in dockerd and runs" in result.stderr
    assert "docker rmi" not in calls and "docker load" not in calls and "mmdebstrap" not in calls


def test_a_base_image_without_a_shell_is_replaced_from_the_cache(stubs: Path) -> None:
    result, calls = run_base_image(stubs, "present", cached=True)
    assert result.returncode == 0, result.stderr
    assert "local/python:3.11-slim is present in dockerd but does not run" in result.stderr
    assert calls.index("docker rmi") < calls.index("docker load") and "mmdebstrap" not in calls
    assert calls.count("docker run") == 2  # checked before and after the load


def test_a_broken_cache_is_deleted_and_the_base_rebuilt(stubs: Path) -> None:
    result, calls = run_base_image(stubs, "present", "cache-is-broken", cached=True)
    assert result.returncode == 0, result.stderr
    assert "the cached" in result.stderr and "is broken: deleting it" in result.stderr
    assert calls.index("docker load") < calls.index("mmdebstrap") < calls.index("docker import")
    assert "docker run" in calls[calls.index("docker import") :]  # the rebuilt one is checked too
    assert [p.name for p in (stubs / "cache").iterdir()] == [p.name for p in (stubs / "cache").glob("*.tar.gz")]


def test_no_image_and_no_cache_builds_it(stubs: Path) -> None:
    result, calls = run_base_image(stubs, cached=False)
    assert result.returncode == 0, result.stderr
    assert calls.index("mmdebstrap") < calls.index("docker import") < calls.index("docker save")


# ---------------------------------------------------------------------------------------------------------
# a non-root laptop whose dockerd socket it may not use


@pytest.fixture
def denied_socket() -> Iterator[tuple[Path, str | None]]:
    """A listening unix socket this test's user (nobody, when running as root) may not open."""
    folder = Path(tempfile.mkdtemp(prefix="mlgit-sock-"))  # not under pytest's 0700 tmp_path: nobody must see it
    folder.chmod(0o755)
    path = folder / "docker.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is needed to run as another user")
        path.chmod(0o660)  # root:root, like root:docker for someone outside group docker
        user = "65534"  # nobody
    else:
        path.chmod(0)
        user = None
    try:
        yield path, user
    finally:
        server.close()
        shutil.rmtree(folder)


def test_permission_denied_on_the_socket_is_said_at_once(denied_socket: tuple[Path, str | None]) -> None:
    path, user = denied_socket
    started = time.monotonic()
    result = bash(f"DOCKER_SOCK={path}\ndockerd_running() {{ return 0; }}  # a dockerd runs\ndocker_engine", user=user)
    assert time.monotonic() - started < 20  # not the 60 s wait for a dockerd that answers others
    assert result.returncode == 1
    assert f"permission denied on {path}" in result.stderr, result.stderr
    assert "or run as root" in result.stderr and "usermod -aG" in result.stderr
    assert QUICK_LOOP in result.stderr
    assert "does not answer" not in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as another user")
def test_steps_that_need_root_name_the_quick_loop() -> None:
    result = bash('need_root "apt-get install docker.io"', user="65534")
    assert result.returncode == 1
    assert "apt-get install docker.io needs root" in result.stderr and QUICK_LOOP in result.stderr


# ---------------------------------------------------------------------------------------------------------
# kubectl: comes with the machine image, may be missing elsewhere


def test_missing_kubectl_under_ci_says_what_is_skipped_and_goes_on(tmp_path: Path) -> None:
    (tmp_path / "date").symlink_to(shutil.which("date"))  # PATH has date (for log) and no kubectl
    script = f"""KUBECTL_DEFAULT={tmp_path}/no-kubectl
check_kubectl
export_test_environment
echo "KUBECTL=[$KUBECTL] MLGIT_TEST_KUBECTL=[${{MLGIT_TEST_KUBECTL-unset}}]"
"""
    result = bash(script, env={"CI": "true", "PATH": str(tmp_path), "MLGIT_TEST_KUBECTL": None})
    assert result.returncode == 0, result.stderr
    assert "kubectl not found" in result.stderr and "SKIPPED (even under CI)" in result.stderr
    assert "tests/manifests" in result.stderr and "install kubectl" in result.stderr
    assert result.stdout == "KUBECTL=[] MLGIT_TEST_KUBECTL=[unset]\n"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_on_path_is_found_and_exported(tmp_path: Path) -> None:
    (tmp_path / "kubectl").symlink_to(shutil.which("kubectl"))
    script = f"""KUBECTL_DEFAULT={tmp_path}/elsewhere
check_kubectl
export_test_environment
echo "$MLGIT_TEST_KUBECTL"
"""
    result = bash(script, env={"PATH": f"{tmp_path}:{os.environ['PATH']}", "MLGIT_TEST_KUBECTL": None})
    assert result.returncode == 0, result.stderr
    assert "Client Version" in result.stderr
    assert result.stdout == f"{tmp_path}/kubectl\n"


# ---------------------------------------------------------------------------------------------------------
# Debian's own python3 refuses pip (PEP 668): the packages go into .venv, as in the README's Quick start

DEBIAN_PYTHON = Path("/usr/bin/python3")


@pytest.mark.skipif(
    not (DEBIAN_PYTHON / "../../lib/python3.11/EXTERNALLY-MANAGED").resolve().is_file(),
    reason="needs Debian's own python3 (externally managed, PEP 668)",
)
def test_an_externally_managed_python_gets_a_virtualenv(tmp_path: Path) -> None:
    script = f'ROOT={tmp_path} PYTHON={DEBIAN_PYTHON}\npython_env\necho "$PYTHON"\npython_env\necho "$PYTHON"'
    result = bash(script, env={"VIRTUAL_ENV": None, "PIP_BREAK_SYSTEM_PACKAGES": None})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{tmp_path}/.venv/bin/python"] * 2
    assert result.stderr.count("externally managed (PEP 668): making a virtualenv in .venv") == 1  # once


@pytest.mark.parametrize(
    "env",
    [{"VIRTUAL_ENV": "/some/venv"}, {"PIP_BREAK_SYSTEM_PACKAGES": "1"}],
    ids=["active-virtualenv", "break-system-packages"],
)
def test_a_python_that_may_install_is_used_as_it_is(tmp_path: Path, env: dict[str, str | None]) -> None:
    result = bash(f'ROOT={tmp_path} PYTHON={sys.executable}\npython_env\necho "$PYTHON"', env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{sys.executable}\n" and not (tmp_path / ".venv").exists()


def test_pyenv_python_is_used_as_it_is(tmp_path: Path) -> None:
    """The CI machines' pyenv Python is not externally managed: no .venv there."""
    base = Path(sys.base_prefix) / "bin" / "python3"
    if not base.exists() or (Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED").exists():
        pytest.skip("this Python is externally managed")
    result = bash(f'ROOT={tmp_path} PYTHON={base}\npython_env\necho "$PYTHON"', env={"VIRTUAL_ENV": None})
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{base}\n" and not (tmp_path / ".venv").exists()


def test_without_kubectl_its_tests_are_skipped_with_the_reason_under_ci_too() -> None:
    """The other half of check_kubectl: pytest skips what needs kubectl, and runs mlgit's no-kubectl tests."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/manifests/test_command.py", "-v", "-rs", "-p", "no:cacheprovider"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CI": "true", "MLGIT_TEST_KUBECTL": "/nonexistent/kubectl"},
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "test_missing_kubectl_exits_1_with_the_hint PASSED" in result.stdout
    assert "test_build_prints_the_manifests SKIPPED" in result.stdout
    assert "kubectl not found (MLGIT_TEST_KUBECTL, /usr/bin/kubectl, PATH): this test runs it" in result.stdout
