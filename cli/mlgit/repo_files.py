"""Renderers of the files at the top of a model repository: the runtime's settings and the Dockerfile."""

from __future__ import annotations

from collections.abc import Iterator

from mlgit.config.load import Project
from mlgit.config.onnx_model import external_data_copies
from mlgit.files import RenderedFile
from mlgit.runtime_settings import RUNTIME_SETTINGS, runtime_settings_dict, settings_json
from mlgit.templating import render_template


def runtime_settings(project: Project) -> Iterator[RenderedFile]:
    text = settings_json(runtime_settings_dict(project))
    yield RenderedFile(RUNTIME_SETTINGS, text)


def dockerfile(project: Project) -> Iterator[RenderedFile]:
    cfg = project.config
    yield RenderedFile(
        "Dockerfile",
        render_template(
            "scaffold",
            "Dockerfile.j2",
            runtime_image=cfg.runtime_image,
            name=cfg.name,
            version=cfg.model.version,
            model_path=cfg.model.path,
            external_data=external_data_copies(cfg.model.path, project.model),
            sample_path=cfg.model.sample.path,
            settings_path=RUNTIME_SETTINGS,
            versions=[
                {
                    "version": extra.version,
                    "path": extra.path,
                    "external_data": external_data_copies(extra.path, project.versions[extra.version]),
                }
                for extra in cfg.model.versions
            ],
        ),
    )
