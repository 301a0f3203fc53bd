"""Helpers of the pipeline tests: model repo variants, reading pipelines, resolving component mode."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from mlgit import __version__, render
from mlgit.config.load import load_project
from mlgit.config.schema import DEFAULT_COMPONENT
from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.pipelines.render import component_path

# mlgit.yaml changes applied to the `model_repo` fixture (a fresh `mlgit init --model`).
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "component": {"pipeline": {"mode": "component"}},
    # Every knob the pipeline reads, away from its default.
    "custom": {
        "pipeline": {"cli_image": "registry.example.com/platform/mlgit-cli", "version": "9.9.9"},
        "tls": {"enabled": False},
        "environments": {
            "dev": {"deploy": "auto", "kube_context": "ml/agents:dev"},
            "qa": {"tier": "testing", "exposure": {"kind": "none"}},
            "prod": {"kube_context": "ml/agents:prod"},
        },
        "review": {"deploy": "manual", "auto_stop_in": "1 week", "kube_context": "ml/agents:dev"},
        "promotion": {"order": ["dev", "qa", "prod"], "auto_deploy": True},
    },
    # prod runs two instances: a GitLab environment, a deploy and a destroy job each (docs/instances.md).
    "instances": {"environments": {"dev": {}, "staging": {}, "prod": {"instances": {"eu": {}, "us": {}}}}},
    "prod-only": {"environments": {"prod": {}}, "review": {"enabled": False}, "pipeline": {"mode": "component"}},
    # Canaries in staging (promotions deploy it by themselves: its analysis starts a window later) and prod
    # (deployed by a button: its analysis is one too).
    "canary": {
        "environments": {"dev": {}, "staging": {"canary": {"analysis": {"window": "15m"}}}, "prod": {"canary": {}}},
        "promotion": {"auto_deploy": True},
        "monitoring": {"prometheus_url": "http://prometheus-operated.monitoring:9090"},
    },
}
_SAFE = YAML(typ="safe", pure=True)
JOB_KEYWORDS_NOT_JOBS = {"workflow", "stages", "variables", "include", "default", "spec"}


def configure(repo: Path, changes: dict[str, Any]) -> Path:
    """Apply `changes` to mlgit.yaml (top-level keys replaced) and re-render the repository."""
    if changes:
        path = repo / "mlgit.yaml"
        doc = read_yaml(path)
        doc.update(changes)
        path.write_text(dump_yaml(doc), encoding="utf-8")
    # A variant may drop environments of the fresh repository: their overlays go with them.
    render.render(load_project(repo), prune=True)
    return repo


def split_component(text: str) -> tuple[dict[str, Any], str]:
    """A component file's `spec:` header and its body (the text after the `---` separator)."""
    header, body = text.split("\n---\n", 1)
    return _SAFE.load(header)["spec"], body


def load_pipeline(repo: Path) -> dict[str, Any]:
    """The repository's pipeline as GitLab sees it: component includes resolved with their inputs."""
    config = _SAFE.load((repo / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    resolved: dict[str, Any] = {}
    for item in config.pop("include", []):
        spec, body = split_component(component_path().read_text(encoding="utf-8"))
        inputs = {name: field.get("default") for name, field in spec["inputs"].items()}
        inputs.update(item.get("inputs", {}))
        missing = [name for name, value in inputs.items() if value is None]
        assert not missing, f"component inputs without a value: {missing}"
        body = re.sub(r"\$\[\[\s*inputs\.(\w+)\s*\]\]", lambda m, values=inputs: str(values[m.group(1)]), body)
        resolved.update(_SAFE.load(body))
    resolved.update(config)
    return resolved


def jobs(pipeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Visible jobs with their `extends` chains merged (GitLab's deep merge of hashes)."""

    def expand(name: str) -> dict[str, Any]:
        job = dict(pipeline[name])
        parents = job.pop("extends", [])
        merged: dict[str, Any] = {}
        for parent in [parents] if isinstance(parents, str) else parents:
            merged = _deep_merge(merged, expand(parent))
        return _deep_merge(merged, job)

    return {n: expand(n) for n in pipeline if n not in JOB_KEYWORDS_NOT_JOBS and not n.startswith(".")}


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        both_dicts = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _deep_merge(out[key], value) if both_dicts else value
    return out


def check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    """GitLab's CI schema (the one the pipeline editor uses) over `files`."""
    argv = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci"]
    argv += ["--data-transform", "gitlab-ci"]
    return subprocess.run([*argv, *map(str, files)], capture_output=True, text=True, check=False)


DEFAULT_BRANCH = "trunk"
REMOTE = "git@gitlab.example.com:ml/model.git"
# "gitlab.com/mlgit/ci/model-pipeline" -> the catalog project "mlgit/ci"
COMPONENT_PROJECT = DEFAULT_COMPONENT.split("/", 1)[1].rsplit("/", 1)[0]


class Pipeline:
    """A copy of a model repository as a git checkout gitlab-ci-local can list pipelines for."""

    def __init__(self, source: Path, work: Path, gitlab_ci_local: str) -> None:
        self.repo = work / "repo"
        self.gitlab_ci_local = gitlab_ci_local
        shutil.copytree(source, self.repo)
        origin = work / "origin.git"
        # The component project, served from a local repository at the version the pipeline pins.
        component = work / "component"
        (component / "templates").mkdir(parents=True)
        shutil.copy(component_path(), component / "templates" / component_path().name)
        self.env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"url.{component}/.git.insteadOf",
            "GIT_CONFIG_VALUE_0": f"ssh://git@gitlab.example.com:22/{COMPONENT_PROJECT}.git",
        }
        self.git("init", "-q", "-b", "main", cwd=component)
        self.git("add", "-A", cwd=component)
        self.git("commit", "-qm", "component", cwd=component)
        self.git("tag", __version__, cwd=component)
        self.git("init", "-q", "--bare", str(origin))
        self.git("init", "-q", "-b", DEFAULT_BRANCH)
        self.git("add", "-A")
        self.git("commit", "-qm", "model repository")
        self.git("remote", "add", "origin", str(origin))
        self.git("remote", "add", "gcl-origin", REMOTE)
        self.git("push", "-q", "origin", DEFAULT_BRANCH)
        self.git("remote", "set-head", "origin", DEFAULT_BRANCH)

    def git(self, *args: str, cwd: Path | None = None) -> str:
        result = subprocess.run(["git", *args], cwd=cwd or self.repo, env=self.env, capture_output=True, text=True)
        assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
        return result.stdout.strip()

    def commit_change(self, path: str) -> None:
        """Commit a change to `path` on top of what origin has: rules:changes then sees exactly it."""
        self.git("update-ref", f"refs/remotes/origin/{DEFAULT_BRANCH}", "HEAD")
        target = self.repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as handle:
            handle.write("\n# changed\n")
        self.git("add", "-A")
        self.git("commit", "-qm", f"change {path}")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [self.gitlab_ci_local, "--json-schema-validation=false", *args]
        return subprocess.run(argv, cwd=self.repo, env=self.env, capture_output=True, text=True, timeout=120)

    def listed(self, variables: list[str] = (), unset: list[str] = ()) -> dict[str, str]:
        """The jobs the pipeline has and their `when`, jobs that rules make `never` left out."""
        return {job["name"]: job["when"] for job in self.list_json(variables, unset) if job["when"] != "never"}

    def list_json(self, variables: list[str] = (), unset: list[str] = ()) -> list[dict[str, Any]]:
        """Every job as gitlab-ci-local's --list-json shows it after the rules: name, when, allow_failure..."""
        args = [a for v in variables for a in ("--variable", v)] + [a for u in unset for a in ("--unset-variable", u)]
        overridden = [v.split("=", 1)[0] for v in variables]
        if overridden:  # on purpose: that is how each situation is made
            args += ["--ignore-predefined-vars", ",".join(overridden)]
        result = self.run("--list-json", *args)
        assert result.returncode == 0, result.stderr + result.stdout
        return json.loads(result.stdout[re.search(r"^\[", result.stdout, re.M).start() :])

    def preview(self) -> dict[str, dict[str, Any]]:
        from ruamel.yaml import YAML

        result = self.run("--preview")
        assert result.returncode == 0, result.stderr + result.stdout
        return jobs(YAML(typ="safe", pure=True).load(result.stdout[result.stdout.index("---") :]))
