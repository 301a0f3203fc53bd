"""Helpers of the pipeline tests: model repo variants, reading pipelines, resolving component mode."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from mlgit import render
from mlgit.config.load import load_project
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
    "prod-only": {"environments": {"prod": {}}, "review": {"enabled": False}, "pipeline": {"mode": "component"}},
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
    render.render(load_project(repo))
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
