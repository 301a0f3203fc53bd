"""What the serving runtime reads: model-settings.json, derived from mlgit.yaml (docs/contracts.md)."""

from __future__ import annotations

import json

from mlgit.config.load import Project
from mlgit.drift_profile import drift_settings
from mlgit.model_settings import ModelSettings

RUNTIME_SETTINGS = "model-settings.json"


def runtime_settings_dict(project: Project) -> dict[str, object]:
    """The serving runtime's model-settings.json (docs/contracts.md), derived from mlgit.yaml: built as the
    runtime's own model, so that it validates as the runtime will, and dumped whole (defaults included)."""
    cfg, serving = project.config, project.config.serving
    signature = project.model.signature
    settings = ModelSettings(
        name=cfg.name,
        version=cfg.model.version,
        inputs=signature.inputs,
        outputs=signature.outputs,
        device=serving.device,
        providers=serving.providers,
        allow_cpu_fallback=serving.allow_cpu_fallback,
        batching=serving.batching,
        threads=serving.threads,
        max_request_bytes=serving.max_request_bytes,
        adapter=cfg.model.adapter,
        drift=drift_settings(project),
    )
    return settings.model_dump(mode="json")


def settings_json(settings: dict[str, object]) -> str:
    """The file's text: the repository's model-settings.json, the ConfigMap's copy and `mlgit serve`'s are
    byte for byte the same."""
    return json.dumps(settings, indent=2) + "\n"
