"""What mlgit's two images are built from: the model image (the repo's generated Dockerfile) and the
serving runtime image (serving_runtime/, shipped inside mlgit), and which files of the repo are stale."""

from __future__ import annotations

from pathlib import Path

from mlgit import repo_files
from mlgit.build.builder import BuildRequest
from mlgit.config.load import Project
from mlgit.errors import MlgitError
from mlgit.resources import shipped_dir

MODEL_HINT = (
    "the failing step's output is above; if mlgit.yaml changed, run `mlgit render` (the Dockerfile is "
    "generated from it) and check that the files it copies exist"
)
RUNTIME_HINT = "the failing step's output is above; a pip step that cannot reach PyPI may need --network host"


def model_request(
    project: Project,
    reference: str,
    runtime_image: str | None,
    secrets: dict[str, Path],
    network: str | None,
    no_cache: bool = False,
) -> BuildRequest:
    """The model image: FROM the pinned runtime (or `runtime_image`), plus the model and its settings."""
    dockerfile = project.root / "Dockerfile"
    if not dockerfile.is_file():
        raise MlgitError(f"{dockerfile} is missing", "run `mlgit render` to generate it from mlgit.yaml")
    return BuildRequest(
        context_dir=project.root,
        dockerfile=dockerfile,
        tag=reference,
        build_args={"RUNTIME_IMAGE": runtime_image} if runtime_image else {},
        secrets=secrets,
        network=network,
        hint=MODEL_HINT,
        no_cache=no_cache,
    )


def stale_generated_files(project: Project) -> list[str]:
    """Generated files baked into the model image that differ from what mlgit.yaml renders to."""
    stale = []
    for rendered in [*repo_files.dockerfile(project), *repo_files.runtime_settings(project)]:
        path = project.root / rendered.path
        if not path.is_file() or path.read_text(encoding="utf-8") != rendered.content:
            stale.append(rendered.path)
    return stale


def runtime_source() -> Path:
    """serving_runtime/ as shipped with this mlgit (its Dockerfile and the mlgit_serving package)."""
    source = shipped_dir("serving_runtime")
    if not (source / "Dockerfile").is_file():
        raise MlgitError(f"{source} has no Dockerfile", "reinstall mlgit; its serving runtime sources are incomplete")
    return source


def runtime_request(
    project: Project,
    reference: str,
    base_image: str | None,
    secrets: dict[str, Path],
    network: str | None,
    no_cache: bool = False,
) -> BuildRequest:
    """The serving runtime image for the repo's device (VARIANT cpu or gpu) on `base_image`."""
    source = runtime_source()
    build_args = {"VARIANT": project.config.serving.device}
    if base_image:
        build_args["BASE_IMAGE"] = base_image
    return BuildRequest(
        context_dir=source,
        dockerfile=source / "Dockerfile",
        tag=reference,
        build_args=build_args,
        secrets=secrets,
        network=network,
        hint=RUNTIME_HINT,
        no_cache=no_cache,
    )
