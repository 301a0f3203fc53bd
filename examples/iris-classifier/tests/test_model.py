"""Smoke test of this model repository: the model loads and answers its sample request.

Runs in the pipeline's test stage (`pytest tests/`) and on a laptop; needs `mlgit` and `onnxruntime`.
"""

from pathlib import Path

from mlgit.config.load import load_project
from mlgit.samples import compare_outputs, run_onnxruntime

REPO = Path(__file__).resolve().parents[1]


def test_model_answers_its_sample() -> None:
    project = load_project(REPO)
    outputs = run_onnxruntime(project.root / project.config.model.path, project.sample["inputs"])
    sample_cfg = project.config.model.sample
    problems = compare_outputs(project.sample.get("expected_outputs", []), outputs, sample_cfg.rtol, sample_cfg.atol)
    assert not problems, "\n".join(problems)
