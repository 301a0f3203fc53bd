"""`mlgit serve` with several workers: what goes wrong is one line and exit status 1, never a traceback
(a port taken, too few file descriptors, a bad MLGIT_SERVING_WORKERS, workers that keep dying)."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from mlgit.config.serving import MAX_WORKERS
from tests.conftest import free_port

pytest.importorskip("mlgit_serving", reason="the serving runtime (pip install ./serving_runtime) is needed")
DEADLINE = 60.0


def _serve(repo: Path, *flags: str, env: dict[str, str] | None = None, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mlgit", "serve", str(repo), "--port", str(free_port()), *flags],
        env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str]) -> str:
    output, _ = proc.communicate(timeout=DEADLINE)
    return output


def _error_lines(output: str) -> list[str]:
    """What mlgit itself said (the runtime's log lines are JSON)."""
    return [line for line in output.splitlines() if line.startswith(("error:", "hint:"))]


@contextmanager
def _taken_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        yield taken.getsockname()[1]


def test_the_cli_and_the_runtime_cap_workers_alike() -> None:
    from mlgit_serving.cpus import MAX_WORKERS as RUNTIME_MAX_WORKERS

    assert MAX_WORKERS == RUNTIME_MAX_WORKERS


def test_a_taken_metrics_port_with_workers_is_one_line(model_repo: Path) -> None:
    with _taken_port() as busy:
        proc = _serve(model_repo, "--workers", "2", env={"MLGIT_SERVING_METRICS_PORT": str(busy)})
        output = _finish(proc)
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    assert _error_lines(output)[0] == (
        f"error: the server could not start: metrics_port: cannot listen on 127.0.0.1:{busy}: Address already in use"
    )


def test_too_few_file_descriptors_for_the_workers_is_one_line(model_repo: Path) -> None:
    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    output = _finish(proc := _serve(model_repo, "--workers", "100", preexec_fn=few_files))
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    assert "with 100 workers: Too many open files" in _error_lines(output)[0]
    assert "raise `ulimit -n`" in _error_lines(output)[1]


def test_more_workers_than_the_cap_is_a_usage_error(model_repo: Path) -> None:
    output = _finish(proc := _serve(model_repo, "--workers", "100000"))
    assert proc.returncode == 2, output
    assert "Traceback" not in output and f"at most {MAX_WORKERS}" in output


@pytest.mark.parametrize("value", ["lots", "0", str(MAX_WORKERS + 1)])
def test_a_bad_workers_variable_names_it_plainly(model_repo: Path, value: str) -> None:
    output = _finish(proc := _serve(model_repo, env={"MLGIT_SERVING_WORKERS": value}))
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    expected = f"MLGIT_SERVING_WORKERS: {value if value == 'lots' else int(value)!r}: give a whole number from 1"
    assert [line for line in output.splitlines() if expected in line] == [
        f"  - {expected} to {MAX_WORKERS}, or auto"
    ], output


def _children(pid: int) -> set[int]:
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE:g} s: {what}")
        time.sleep(0.05)


def test_workers_that_keep_dying_are_reported_as_such(model_repo: Path) -> None:
    """The server had started: "could not start" would send the user looking at ports."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlgit", "serve", str(model_repo), "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:

        def ready() -> bool:
            assert proc.poll() is None
            try:
                return httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        # The runtime allows 5 restarts within a minute; the 6th death stops it.
        while proc.poll() is None:
            _wait(lambda: proc.poll() is not None or ready(), "every worker ready")
            if proc.poll() is not None:
                break
            workers = _children(proc.pid)
            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            # Until the supervisor has seen it (a replacement appears, or it stops), readiness may be stale.
            _wait(lambda known=workers: proc.poll() is not None or bool(_children(proc.pid) - known), "noticed")
        output = _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=DEADLINE)
    assert proc.returncode == 1, output
    assert _error_lines(output)[0] == "error: the server stopped: workers died 6 times within 60 s; stopping"
    assert "could not start" not in output
