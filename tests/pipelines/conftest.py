"""Model repositories for the pipeline tests, built once per session (the tests only read them)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.onnx_models import write_linear_model
from tests.pipelines.support import VARIANTS, configure

MODES = ("inline", "component")
# case name -> (example or None for the linear model repo, mlgit.yaml changes)
CASES: dict[str, tuple[str | None, dict]] = {
    **{f"linear-{name}": (None, changes) for name, changes in VARIANTS.items()},
    **{f"{example}-{mode}": (example, {"pipeline": {"mode": mode}}) for example in EXAMPLES for mode in MODES},
}


@pytest.fixture(scope="session")
def pipeline_repo(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The model repository of a CASES entry, rendered; the same directory for the whole session."""
    from mlgit.scaffold import InitOptions, init_repository

    built: dict[str, Path] = {}

    def get(case: str) -> Path:
        if case not in built:
            example, changes = CASES[case]
            base = tmp_path_factory.mktemp(case)
            if example is None:
                options = InitOptions(target=base / "repo", name="linear", model=write_linear_model(base / "m.onnx"))
            else:
                options = InitOptions(target=base / "repo", example=example)
            built[case] = configure(init_repository(options), changes)
        return built[case]

    return get
