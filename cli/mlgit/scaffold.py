"""`mlgit init`: create a complete model repository, never half-written.

Everything is built in a temporary sibling directory, validated and rendered there through the one
render entry point, then moved into place.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from mlgit import render
from mlgit.config.load import CONFIG_FILE, load_project, parse_config
from mlgit.config.onnx_model import OnnxModel, check_external_data, external_data_path, read_onnx
from mlgit.config.schema import MlgitConfig
from mlgit.config.serving import ImageConfig
from mlgit.config.types import DNS_NAME_RE, ModelName
from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.errors import ExitCode, Location, MlgitError
from mlgit.files import write_atomic
from mlgit.resources import shipped_dir
from mlgit.samples.tensors import make_sample
from mlgit.targets import target
from mlgit.templating import render_template

DEFAULT_EXAMPLE = "iris-classifier"
# Files the user owns after init; render never touches them.
SCAFFOLD_TEMPLATES = {
    "README.md": "README.md.j2",
    ".gitignore": "gitignore.j2",
    "tests/test_model.py": "test_model.py.j2",
}


@dataclass(frozen=True)
class InitOptions:
    target: Path
    name: str | None = None
    model: Path | None = None
    example: str | None = None
    domain: str | None = None
    registry: str | None = None
    force: bool = False
    git: bool = False


def list_examples() -> list[str]:
    return sorted(p.name for p in shipped_dir("examples").iterdir() if (p / CONFIG_FILE).is_file())


def _slug(text: str) -> str:
    """A model name from a directory name: a DNS label starting with a letter, fit for review apps."""
    slug = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    slug = slug if slug[:1].isalpha() else f"model-{slug}".rstrip("-")
    return slug[:31].rstrip("-")


def _check_flags(options: InitOptions) -> None:
    """Bad --name/--domain/--registry values, reported as the flags they are (not as a staged mlgit.yaml)."""
    problems = []
    if options.name is not None:
        try:
            TypeAdapter(ModelName).validate_python(options.name)
        except ValidationError:
            problems.append(f"--name {options.name!r}: use lowercase letters, digits and '-', starting with a letter")
    if options.domain is not None and not DNS_NAME_RE.match(options.domain):
        problems.append(f"--domain {options.domain!r}: not a DNS name (e.g. models.example.com)")
    if options.registry is not None:
        try:
            ImageConfig(repository=options.registry)
        except ValidationError:
            problems.append(
                f"--registry {options.registry!r}: not an image repository (e.g. registry.example.com/ml/x)"
            )
    if problems:
        raise MlgitError("invalid option values", problems=problems, exit_code=ExitCode.USAGE)


def _check_target(options: InitOptions) -> None:
    target = options.target
    if target.exists() and not target.is_dir():
        raise MlgitError(f"{target} exists and is not a directory", "choose another DIR")
    if (target / CONFIG_FILE).is_file():
        raise MlgitError(
            f"{target} is already a model repository ({CONFIG_FILE} exists)",
            "edit mlgit.yaml and run `mlgit render`; init never overwrites a repository, even with --force",
        )
    if target.is_dir() and any(target.iterdir()) and not options.force:
        raise MlgitError(
            f"{target} is not empty",
            "choose an empty or new directory, or pass --force to write mlgit's files into it "
            "(your README.md, .gitignore and tests/test_model.py are kept if present)",
        )
    parent = target if target.is_dir() else target.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise MlgitError(f"cannot write to {parent}", "choose a directory you can write to, or fix its permissions")


def _copy_example(name: str, staging: Path) -> None:
    source = shipped_dir("examples") / name
    if not (source / CONFIG_FILE).is_file():
        raise MlgitError(f"unknown example {name!r}", f"choose one of: {', '.join(list_examples())}")
    shutil.copytree(source, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))


def _from_model(model_path: Path, name: str, staging: Path) -> None:
    # Everything about the user's model is checked, and its sample computed, on their own file (so that
    # messages name it) before anything is copied. Not resolved: onnxruntime reads external data relative to
    # the path it is given, so a model linked from a cache (DVC) finds its data files beside the link.
    model: OnnxModel = read_onnx(model_path.absolute())
    check_external_data(model)
    clash = [d.location for d in model.external_data if posixpath.normpath(d.location) == "sample.json"]
    if clash:
        raise MlgitError(
            "the model's external data file is named sample.json, the name of the repository's sample request",
            "re-export the model with another external data location (e.g. model.onnx.data)",
            location=Location(model.path),
        )
    sample = make_sample(model.path, model.signature)
    (staging / "model").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_path, staging / "model" / "model.onnx")
    # The data files keep their location relative to the model, which is how onnxruntime finds them.
    for data in model.external_data:
        copy = staging / "model" / data.location
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(external_data_path(model, data), copy)
    write_atomic(staging / "model" / "sample.json", json.dumps(sample) + "\n")
    text = render_template(
        "scaffold",
        "mlgit.yaml.j2",
        name=name,
        domain="models.example.com",
        repository=f"registry.example.com/ml/{name}",
        signature=model.signature.model_dump(),
        batching=model.signature.batchable,
    )
    write_atomic(staging / CONFIG_FILE, text)


def _apply_overrides(staging: Path, options: InitOptions, name: str | None) -> None:
    """Change name/domain/registry in mlgit.yaml, keeping its comments and layout."""
    changes = {"name": name, "domain": options.domain}
    if not any(changes.values()) and not options.registry:
        return
    path = staging / CONFIG_FILE
    doc = read_yaml(path)
    for key, value in changes.items():
        if value:
            doc[key] = value
    if options.registry:
        doc.setdefault("image", {})["repository"] = options.registry
    write_atomic(path, dump_yaml(doc))


def _scaffold_files(staging: Path, name: str) -> None:
    config, _ = parse_config(staging / CONFIG_FILE)
    for rel, template in SCAFFOLD_TEMPLATES.items():
        if not (staging / rel).exists():
            write_atomic(staging / rel, scaffold_text(template, config, name))


def scaffold_text(template: str, config: MlgitConfig, name: str) -> str:
    """A file of SCAFFOLD_TEMPLATES as init writes it for `config`."""
    urls = {env: target(config, env).url for env in config.environments}
    return render_template("scaffold", template, name=name, config=config, urls=urls)


def _git_commit(target: Path) -> None:
    def git(*args: str) -> None:
        env = {**os.environ}
        for key, value in (("GIT_AUTHOR_NAME", "mlgit"), ("GIT_AUTHOR_EMAIL", "mlgit@localhost")):
            env.setdefault(key, value)
            env.setdefault(key.replace("AUTHOR", "COMMITTER"), value)
        result = subprocess.run(["git", *args], cwd=target, env=env, capture_output=True, text=True, check=False)
        if result.returncode:
            raise MlgitError(
                f"git {' '.join(args)} failed: {result.stderr.strip()}",
                "the files are in place; commit them yourself",
            )

    if shutil.which("git") is None:
        raise MlgitError("git is not installed", "install git, or run init without --git")
    if not (target / ".git").exists():
        git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "Initial model repository (mlgit init)")


def _move_into_place(staging: Path, target: Path) -> list[str]:
    """Move the staged repository to `target`; return the user's files that were kept instead."""
    if not target.exists():
        # mkdtemp made the staging folder private (0700): the repository gets a folder's usual mode.
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
        staging.rename(target)
        return []
    # Into an existing directory (empty, or --force): file by file, so the directory itself (maybe the
    # shell's current one) stays, and files the user owns after init are never replaced.
    kept = []
    for path in sorted(staging.rglob("*")):
        if path.is_file():
            rel = path.relative_to(staging).as_posix()
            dest = target / rel
            if rel in SCAFFOLD_TEMPLATES and dest.exists():
                kept.append(rel)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
    shutil.rmtree(staging)
    return kept


def init_repository(options: InitOptions) -> Path:
    """Create the model repository described by `options`; return its path."""
    target = options.target.resolve()
    options = InitOptions(**{**options.__dict__, "target": target})
    if options.model and options.example:
        raise MlgitError("--model and --example exclude each other", "pass one of them")
    _check_flags(options)
    _check_target(options)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.mlgit-", dir=target.parent))
    except OSError as exc:
        raise MlgitError(
            f"cannot write to {target.parent}: {exc.strerror}", "choose a directory you can write to"
        ) from None
    try:
        if options.model:
            if options.model.suffix != ".onnx":
                raise MlgitError(f"{options.model} is not a .onnx file", "pass the path of an ONNX model",
                                 location=Location(options.model))  # fmt: skip
            if not options.model.is_file():
                raise MlgitError(f"--model {options.model}: file not found", "pass the path of an existing .onnx file")
            _from_model(options.model, options.name or _slug(target.name), staging)
            name = options.name
        else:
            _copy_example(options.example or DEFAULT_EXAMPLE, staging)
            name = options.name
        _apply_overrides(staging, options, name)
        config, _ = parse_config(staging / CONFIG_FILE)
        _scaffold_files(staging, config.name)
        # Placeholder warnings would name the staging folder; `mlgit validate` shows them with the real path.
        render.render(load_project(staging, warn=False))
        _move_into_place(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise MlgitError(f"cannot create {target}: {exc.strerror} ({exc.filename})") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if options.git:
        _git_commit(target)
    return target
