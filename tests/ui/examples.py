"""The shipped examples laid out as a model repository the runtime serves (docs/contracts.md), on this CPU."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import REPO_ROOT


def add_example(root: Path, example: str) -> Path:
    """Copy examples/<example>'s model, sample and rendered model-settings.json under root/<example>/1/.

    A GPU model gets allow_cpu_fallback, so that it loads on this machine's CPU as it would on a node whose
    CUDA is missing; nothing else of its settings (the adapter included) changes."""
    source = REPO_ROOT / "examples" / example
    directory = root / example
    (directory / "1").mkdir(parents=True)
    shutil.copyfile(source / "model" / "model.onnx", directory / "1" / "model.onnx")
    shutil.copyfile(source / "model" / "sample.json", directory / "sample.json")
    settings = json.loads((source / "model-settings.json").read_text(encoding="utf-8"))
    settings["allow_cpu_fallback"] = True
    (directory / "model-settings.json").write_text(json.dumps(settings), encoding="utf-8")
    return directory
