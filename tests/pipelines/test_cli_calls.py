"""The jobs call the CLI: no `python -m` in any pipeline template, and every `mlgit` line of every job
names a command that exists, with its required options and values it accepts."""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup

from mlgit import templating
from mlgit.config.load import load_project
from mlgit.main import app
from mlgit.pipelines.render import gitlab_ci
from mlgit.resources import shipped_dir
from tests.pipelines.conftest import CASES
from tests.pipelines.support import jobs, load_pipeline

Repo = Callable[[str], Path]


def _templates() -> list[Path]:
    root = shipped_dir("pipelines")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".j2", ".yml"))


def _mlgit_calls(pipeline: dict[str, Any]) -> list[str]:
    return [line for job in jobs(pipeline).values() for line in job.get("script", []) if line.startswith("mlgit ")]


def parse_error(call: str) -> str | None:
    """Why `call`, split as the shell splits it, is no valid `mlgit` command line (None: it is one).

    Click parses it to the end (sub-commands, required options, types, ranges) and builds the command's
    context, but nothing runs. A shell variable ("$MLGIT_IMAGE") stands for itself: a fine value for an
    option that takes text. Not `--help`, which Click answers before it checks anything else."""
    args = shlex.split(call)[1:]
    command = typer.main.get_command(app)
    name, parent = "mlgit", None
    try:
        while isinstance(command, TyperGroup):
            if not args:
                return f"no sub-command after {name}"
            parent = typer.Context(command, info_name=name, parent=parent)
            sub_name, sub, args = command.resolve_command(parent, args)
            assert sub_name is not None and sub is not None
            name, command = sub_name, sub
        command.make_context(name, args, parent=parent).close()
    except typer.TyperException as exc:  # typer's own copy of Click raises its usage errors as these
        return exc.format_message()
    except typer.Exit:
        return "an eager option (--help, --version) answers before the command runs"
    return None


def test_no_pipeline_template_runs_a_python_module() -> None:
    templates = _templates()
    assert templates, "no pipeline templates found"
    offenders = [str(p) for p in templates if "python -m" in p.read_text(encoding="utf-8")]
    assert offenders == [], "jobs call `mlgit <command>`, never `python -m` (docs: CI jobs call the CLI)"


@pytest.mark.parametrize("case", [c for c in CASES if c.endswith(("-default", "-custom", "-component"))])
def test_every_mlgit_call_of_a_job_parses(case: str, pipeline_repo: Repo) -> None:
    calls = _mlgit_calls(load_pipeline(pipeline_repo(case)))
    assert {shlex.split(c)[1] for c in calls} >= {"smoke", "manifests", "deploy", "validate"}
    assert {call: parse_error(call) for call in calls} == dict.fromkeys(calls)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("mlgit manifests diff --env staging", "Missing option '--base'"),
        ("mlgit smoke --url http://model:8080 --timeout abc", "Invalid value for '--timeout'"),
        ("mlgit smoke --url http://model:8080 --timeout 0", "Invalid value for '--timeout'"),
        ("mlgit smoke", "Missing option '--url'"),
        ("mlgit deploy --env dev --no-such-option", "No such option: --no-such-option"),
        ("mlgit manifests differ --env dev", "No such command 'differ'"),
        ("mlgit manifests", "no sub-command after manifests"),
        ("mlgit manifests diff --env staging --help", "an eager option"),
    ],
)
def test_a_call_that_would_not_parse_is_found(call: str, message: str) -> None:
    assert message in (parse_error(call) or "")


def test_a_line_planted_in_a_copy_of_a_template_fails_the_check(
    pipeline_repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped job templates, copied, with two lines that --help would have let through."""
    copy = tmp_path / "pipelines"
    shutil.copytree(shipped_dir("pipelines"), copy)
    smoke = "mlgit smoke --url http://model:8080"
    planted = {
        "jobs/promote.yml.j2": (' --base "$CI_MERGE_REQUEST_DIFF_BASE_SHA"', ""),
        "jobs/base.yml.j2": (f"{smoke}\n", f"{smoke} --timeout abc\n"),
    }
    for name, (old, new) in planted.items():
        text = (copy / name).read_text(encoding="utf-8")
        assert old in text, f"{name} no longer holds {old!r}: plant another line"
        (copy / name).write_text(text.replace(old, new), encoding="utf-8")
    monkeypatch.setattr(templating, "shipped_dir", lambda kind: copy if kind == "pipelines" else shipped_dir(kind))
    templating.environment.cache_clear()
    try:
        rendered = next(gitlab_ci(load_project(pipeline_repo("linear-default"))))
    finally:
        templating.environment.cache_clear()
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / rendered.path).write_text(rendered.content, encoding="utf-8")
    calls = _mlgit_calls(load_pipeline(repo))
    failures = {call: error for call in calls if (error := parse_error(call))}
    planted_calls = [c for c in calls if c.startswith("mlgit manifests diff") or "--timeout abc" in c]
    assert len(planted_calls) >= 2 and sorted(failures) == sorted(planted_calls)
    for call, error in failures.items():
        assert ("Missing option '--base'" if " diff " in call else "Invalid value for '--timeout'") in error
