"""Generated files at the top of a model repository: the runtime's settings and the Dockerfile."""

from __future__ import annotations

import json
from collections.abc import Iterator

from mlgit.config.load import Project
from mlgit.config.onnx_model import external_data_copies
from mlgit.render.files import RenderedFile
from mlgit.render.templating import render_template

RUNTIME_SETTINGS = "model-settings.json"


def runtime_settings_dict(project: Project) -> dict[str, object]:
    """The serving runtime's model-settings.json (docs/contracts.md), derived from mlgit.yaml."""
    cfg, serving = project.config, project.config.serving
    signature = project.model.signature
    return {
        "name": cfg.name,
        "version": cfg.model.version,
        "platform": "onnxruntime",
        "inputs": [t.model_dump() for t in signature.inputs],
        "outputs": [t.model_dump() for t in signature.outputs],
        "device": serving.device,
        "providers": [p.model_dump() for p in serving.providers or []],
        "allow_cpu_fallback": serving.allow_cpu_fallback,
        "batching": serving.batching.model_dump(),
        "threads": serving.threads.model_dump(),
        "max_request_bytes": serving.max_request_bytes,
        "warmup": True,
    }


def runtime_settings(project: Project) -> Iterator[RenderedFile]:
    text = json.dumps(runtime_settings_dict(project), indent=2) + "\n"
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
        ),
    )
