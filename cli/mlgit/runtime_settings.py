"""What the serving runtime reads: model-settings.json, derived from mlgit.yaml (docs/contracts.md)."""

from __future__ import annotations

from mlgit.config.load import Project

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
