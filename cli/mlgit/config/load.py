"""Load mlgit.yaml into one validated Project: the config, where it came from, and its model."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mlgit.config.onnx_model import OnnxModel, check_external_data, read_onnx, signature_differences
from mlgit.config.placeholders import placeholder_warnings
from mlgit.config.schema import MlgitConfig
from mlgit.config.yamlio import position, read_yaml
from mlgit.console import print_warning
from mlgit.errors import Location, MlgitError
from mlgit.samples.check import check_sample

CONFIG_FILE = "mlgit.yaml"
_PATH_PREFIX = re.compile(r"^([a-z_][a-z0-9_]*(\.[a-z0-9_-]+)*): ")


@dataclass(frozen=True)
class Project:
    """A loaded model repository: everything the renderers and commands read."""

    root: Path
    config: MlgitConfig
    model: OnnxModel
    sample: dict[str, Any]
    # `file:line:col: field: why` for placeholders (config.placeholders) and wasteful serving.workers
    warnings: tuple[str, ...] = ()
    versions: dict[str, OnnxModel] = field(default_factory=dict)
    """model.versions: version -> its ONNX model (same signature as `model`)."""
    version_samples: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The sample request of each of model.versions that has one."""

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The pydantic model class found at `loc` inside MlgitConfig (for 'did you mean')."""
    cls: Any = MlgitConfig
    skip_next = False  # the previous field was a dict/list: this key is an item key, not a field
    for key in loc:
        if skip_next:
            skip_next = False
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or str(key) not in cls.model_fields:
            return None
        annotation = cls.model_fields[str(key)].annotation
        origin = getattr(annotation, "__origin__", None)
        skip_next = origin in (dict, list)
        models = [a for a in (annotation, *getattr(annotation, "__args__", ())) if isinstance(a, type)]
        cls = next((a for a in models if issubclass(a, BaseModel)), None)
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _describe(error: dict[str, Any], doc: Any, path: Path) -> str:
    loc = tuple(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    match = _PATH_PREFIX.match(message)
    if match and error["type"] == "value_error":
        loc = loc + tuple(match.group(1).split("."))
        message = message[match.end() :]
    if error["type"] == "extra_forbidden":
        owner = _model_at(loc[:-1])
        known = list(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        message = f"unknown key {loc[-1]!r}" + (f"; did you mean {close[0]!r}?" if close else "")
        if known:
            message += f" (allowed: {', '.join(known)})"
    elif error["type"] == "missing":
        message = "required field is missing"
    where = position(doc, loc)
    field = ".".join(str(p) for p in loc) or "(top level)"
    prefix = f"{path}:{where[0]}:{where[1]}" if where else str(path)
    return f"{prefix}: {field}: {message}"


def parse_config(path: Path) -> tuple[MlgitConfig, Any]:
    """Read and validate mlgit.yaml (no model checks); return the config and the round-trip doc."""
    doc = read_yaml(path)
    if not isinstance(doc, dict):
        raise MlgitError("mlgit.yaml must be a mapping of keys such as name, domain, model, image",
                         location=Location(path, 1, 1))  # fmt: skip
    try:
        plain = json.loads(json.dumps(doc, default=str))
    except TypeError:
        raise MlgitError(
            "a mapping key is not a plain string or number (a `? [list]` or `? {map}` key)",
            "write each key as a plain name",
            location=Location(path),
        ) from None
    try:
        config = MlgitConfig.model_validate(plain)
    except ValidationError as exc:
        problems = [_describe(e, doc, path) for e in exc.errors()]
        raise MlgitError(
            f"{path} is not valid ({len(problems)} problem{'s' if len(problems) > 1 else ''})",
            "fix the fields above; `mlgit schema` prints every field with its documentation",
            problems=problems,
        ) from None
    return config, doc


def _config_location(config_path: Path, doc: Any, loc: tuple[str | int, ...]) -> Location:
    """Where in mlgit.yaml the field at `loc` (or its nearest existing parent) is."""
    return Location(config_path, *(position(doc, loc) or (None, None)))


def _load_sample(project_root: Path, config: MlgitConfig, model: OnnxModel, doc: Any) -> dict[str, Any]:
    sample_path = project_root / config.model.sample.path
    if not sample_path.is_file():
        raise MlgitError(
            f"sample request {sample_path} not found" + (" (it is a directory)" if sample_path.is_dir() else ""),
            "create it (docs/contracts.md) or point model.sample.path at it",
            location=_config_location(project_root / CONFIG_FILE, doc, ("model", "sample", "path")),
        )
    return check_sample(sample_path, model.signature)


def _load_model(root: Path, config: MlgitConfig, doc: Any) -> OnnxModel:
    model_path = root / config.model.path
    if not model_path.is_file():
        raise MlgitError(
            f"model.path: {config.model.path} not found" + (" (it is a directory)" if model_path.is_dir() else ""),
            "put the .onnx file there, or set model.path to it (relative to mlgit.yaml)",
            location=_config_location(root / CONFIG_FILE, doc, ("model", "path")),
        )
    model = read_onnx(model_path)
    check_external_data(model)
    return model


def _load_versions(
    root: Path, config: MlgitConfig, doc: Any, main: OnnxModel
) -> tuple[dict[str, OnnxModel], dict[str, dict[str, Any]]]:
    """Each of model.versions, checked like the main model, with the main model's signature (one
    model-settings.json serves them all), and its sample when it has one."""
    models, samples = {}, {}
    config_path = root / CONFIG_FILE
    for index, extra in enumerate(config.model.versions):
        where = _config_location(config_path, doc, ("model", "versions", index, "path"))
        path = root / extra.path
        if not path.is_file():
            raise MlgitError(
                f"model.versions[{index}].path: {extra.path} not found", "put the .onnx file there", location=where
            )
        model = read_onnx(path)
        check_external_data(model)
        problems = signature_differences(main.signature, model.signature)
        if problems:
            raise MlgitError(
                f"model.versions[{index}]: version {extra.version} ({extra.path}) has another signature than "
                f"{config.model.path}",
                "versions in one image share one model-settings.json; serve a model with another signature as a "
                "model of its own",
                location=where,
                problems=problems,
            )
        models[extra.version] = model
        if extra.sample is not None:
            sample_path = root / extra.sample.path
            if not sample_path.is_file():
                raise MlgitError(
                    f"model.versions[{index}].sample.path: {extra.sample.path} not found",
                    "create it (docs/contracts.md) or drop the version's sample",
                    location=_config_location(config_path, doc, ("model", "versions", index, "sample")),
                )
            samples[extra.version] = check_sample(sample_path, main.signature)
    return models, samples


def _git_top(start: Path) -> Path | None:
    """The top of the git repository (or worktree, or submodule) holding `start`, as git finds it."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def find_root(start: Path) -> Path:
    """The folder holding mlgit.yaml: `start` or the nearest parent, as git finds `.git`.

    The search stops at the top of the git repository `start` is in (outside one, at the filesystem root):
    a mlgit.yaml above that belongs to another repository, and `mlgit render` must not write there.
    """
    start = start.resolve()
    if not start.is_dir():
        raise MlgitError(
            f"{start} is not a directory" if start.exists() else f"{start} not found",
            "pass the model repository's folder (the one holding mlgit.yaml)",
        )
    top = _git_top(start)
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
        if folder == top:
            break
    where = f"up to the git repository's top {top}" if top else "up to the filesystem root"
    raise MlgitError(
        f"{CONFIG_FILE} not found in {start} or its parent folders ({where})",
        "run `mlgit init` to create a model repository, or pass the folder that holds mlgit.yaml",
    )


def load_project(root: Path, *, warn: bool = True) -> Project:
    """Load, validate and cross-check the model repository at or above `root` (config, ONNX file, sample).

    Placeholder values (example.com, an issuer nobody chose) are in `Project.warnings`; with `warn`
    they are also printed to stderr, where they never mix with a command's output.
    """
    root = find_root(root)
    config_path = root / CONFIG_FILE
    config, doc = parse_config(config_path)
    model = _load_model(root, config, doc)
    declared = config.model.signature
    if declared is not None:
        problems = signature_differences(declared, model.signature)
        if problems:
            raise MlgitError(
                f"the signature in mlgit.yaml disagrees with {config.model.path}",
                "fix model.signature, or delete it to use the model's own signature",
                location=_config_location(config_path, doc, ("model", "signature")),
                problems=problems,
            )
    adapter = config.model.adapter
    if adapter is not None and declared is None:  # a declared signature was checked with the config
        try:
            adapter.geometry(model.signature.inputs, model.signature.outputs)
        except ValueError as exc:
            raise MlgitError(
                f"model.{exc}",
                "fix model.adapter to fit the model's signature (`mlgit schema` documents it)",
                location=_config_location(config_path, doc, ("model", "adapter")),
            ) from None
    if config.serving.batching.enabled and not model.signature.batchable:
        raise MlgitError(
            "adaptive batching needs a dynamic first (batch) dimension on every input; this model has "
            + ", ".join(f"{t.name} {t.shape}" for t in model.signature.inputs),
            "set serving.batching.enabled: false, or export the model with a dynamic batch axis",
            location=_config_location(config_path, doc, ("serving", "batching")),
        )
    sample = _load_sample(root, config, model, doc)
    versions, version_samples = _load_versions(root, config, doc, model)
    where = position(doc, ("serving", "workers"))
    workers_at = Location(config_path, *where) if where else config_path
    warnings = (
        *placeholder_warnings(config, doc, config_path),
        *(f"{workers_at}: serving.workers: {why}" for why in config.serving.worker_warnings()),
    )
    if warn:
        for warning in warnings:
            print_warning(warning)
    return Project(
        root=root,
        config=config,
        model=model,
        sample=sample,
        warnings=warnings,
        versions=versions,
        version_samples=version_samples,
    )
