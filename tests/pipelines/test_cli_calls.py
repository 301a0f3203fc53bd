"""The jobs call the CLI: no `python -m` in any pipeline template, and every `mlgit` line of every job
names a command that exists, with options it accepts."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgit.main import app
from mlgit.resources import shipped_dir
from tests.pipelines.conftest import CASES
from tests.pipelines.support import jobs, load_pipeline

Repo = Callable[[str], Path]


def _templates() -> list[Path]:
    root = shipped_dir("pipelines")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".j2", ".yml"))


def test_no_pipeline_template_runs_a_python_module() -> None:
    templates = _templates()
    assert templates, "no pipeline templates found"
    offenders = [str(p) for p in templates if "python -m" in p.read_text(encoding="utf-8")]
    assert offenders == [], "jobs call `mlgit <command>`, never `python -m` (docs: CI jobs call the CLI)"


@pytest.mark.parametrize("case", [c for c in CASES if c.endswith(("-default", "-custom", "-component"))])
def test_every_mlgit_call_of_a_job_parses(case: str, pipeline_repo: Repo) -> None:
    calls = [
        line
        for job in jobs(load_pipeline(pipeline_repo(case))).values()
        for line in job.get("script", [])
        if line.startswith("mlgit ")
    ]
    assert {shlex.split(c)[1] for c in calls} >= {"smoke", "manifests", "deploy", "validate"}
    for call in calls:
        # --help is eager: the command and every option are parsed, then nothing runs.
        result = CliRunner().invoke(app, [*shlex.split(call)[1:], "--help"])
        assert result.exit_code == 0, f"{call}: {result.output}"
