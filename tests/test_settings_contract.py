"""model-settings.json: what the CLI writes is what the runtime reads, from one definition (docs/contracts.md).

The contract is serving_runtime/mlgit_serving/model_settings.py, and cli/mlgit/model_settings.py is a symlink to
it (a wheel carries a copy: tests/test_packaging.py). These tests hold both sides to it: one file that imports
nothing either side may lack; every model-settings.json the CLI writes loads in the runtime into exactly the
values written, leaving no field to a runtime default; mlgit.yaml's sections are the contract's classes; and
mlgit.yaml's defaults are the contract's but for the one it declares.
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import mlgit.model_settings as cli_side
import mlgit_serving.model_settings as runtime_side
from mlgit.config.load import CONFIG_FILE, load_project
from mlgit.config.schema import MlgitConfig
from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.manifests.render import DEPLOY
from mlgit.runtime_settings import RUNTIME_SETTINGS, runtime_settings_dict
from mlgit_serving.model_settings import BatchingSettings, ModelSettings, ProviderSpec, TensorSpec, ThreadSettings
from mlgit_serving.repository import read_settings
from tests.conftest import REPO_ROOT
from tests.manifests.cases import CASES

CONTRACT = REPO_ROOT / "serving_runtime" / "mlgit_serving" / "model_settings.py"
CLI_LINK = REPO_ROOT / "cli" / "mlgit" / "model_settings.py"
# Where mlgit.yaml's default is not a bare model-settings.json's: (the file's, mlgit.yaml's). Why: docs/contracts.md.
MLGIT_YAML_OWN_DEFAULTS = {"batching.enabled": (False, True)}
ABSENT = "<absent>"


def leaves(document: object, path: str = "") -> dict[str, object]:
    """`a.b[0].c` -> value for every scalar (and empty container) of a JSON document."""
    if isinstance(document, dict) and document:
        return {k: v for key, value in document.items() for k, v in leaves(value, f"{path}{key}.").items()}
    if isinstance(document, list) and document:
        return {k: v for i, item in enumerate(document) for k, v in leaves(item, f"{path.rstrip('.')}[{i}].").items()}
    return {path.rstrip("."): document}


def differences(first: object, second: object) -> dict[str, tuple[object, object]]:
    """path -> (first's value, second's) wherever two JSON documents differ; a missing leaf reads ABSENT."""
    a, b = leaves(first), leaves(second)
    pairs = {path: (a.get(path, ABSENT), b.get(path, ABSENT)) for path in dict.fromkeys([*a, *b])}
    return {path: pair for path, pair in pairs.items() if pair[0] != pair[1]}


def test_cli_and_runtime_share_one_file() -> None:
    assert CLI_LINK.is_symlink(), f"{CLI_LINK} must stay a symlink to {CONTRACT}, not a copy that can drift"
    assert CLI_LINK.resolve() == CONTRACT.resolve()
    # What is imported: the same source on both sides (through the link in a checkout, a copy in a wheel).
    assert Path(cli_side.__file__).read_bytes() == Path(runtime_side.__file__).read_bytes()
    assert cli_side.ModelSettings.model_json_schema() == runtime_side.ModelSettings.model_json_schema()


def test_the_contract_imports_nothing_either_side_may_lack() -> None:
    """Pydantic and the standard library only: no relative import (it lives in two packages), no package of
    either side (the runtime never imports the CLI; the CLI must not need the web stack)."""
    tree = ast.parse(CONTRACT.read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        (node.module or "").split(".")[0] if node.level == 0 else "." * node.level
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported - set(sys.stdlib_module_names) - {"pydantic"} == set()


@pytest.mark.parametrize("case", CASES)
def test_what_the_cli_writes_loads_in_the_runtime_as_written(case: str, case_repo: Callable[[str], Path]) -> None:
    """Both files the runtime may read (the image's copy and the ConfigMap mounted over it) load through the
    runtime's own loader into exactly what they say, every field given: no runtime default decides anything."""
    root = case_repo(case)
    project = load_project(root)
    for written in (root / RUNTIME_SETTINGS, root / DEPLOY / "base" / RUNTIME_SETTINGS):
        raw = json.loads(written.read_text(encoding="utf-8"))
        assert raw == runtime_settings_dict(project), f"{written} is not what mlgit.yaml renders"
        loaded = read_settings(written.parent).model_dump(mode="json")
        defaulted = [path for path in leaves(loaded) if path not in leaves(raw)]
        assert defaulted == [], f"{written} leaves these to the runtime's defaults"
        assert differences(raw, loaded) == {}, f"the runtime reads {written} otherwise than written"


def test_mlgit_yaml_reuses_the_contracts_classes() -> None:
    """The mlgit.yaml sections that mean what the file means are the contract's classes (descriptions and all);
    `serving.batching` differs from the file's only in its default for `enabled`."""
    definitions = MlgitConfig.model_json_schema()["$defs"]
    for contract in (TensorSpec, ProviderSpec, ThreadSettings):
        assert definitions[contract.__name__] == contract.model_json_schema(), contract.__name__
    contract = BatchingSettings.model_json_schema()["properties"]
    own = {"enabled": {**contract["enabled"], "default": MLGIT_YAML_OWN_DEFAULTS["batching.enabled"][1]}}
    assert definitions["BatchingConfig"]["properties"] == {**contract, **own}


def test_every_field_of_the_file_comes_from_mlgit_yaml(model_repo: Path) -> None:
    """Each setting mlgit.yaml gives (none at its default) lands in its field; a field the contract gains fails
    here until the CLI derives it (or this test says it is the contract's constant)."""
    config = model_repo / CONFIG_FILE
    doc = read_yaml(config)
    doc["model"]["version"] = "7"
    doc["serving"] = {
        "device": "gpu",
        "providers": [{"name": "TensorrtExecutionProvider", "options": {"trt_fp16_enable": True}}],
        "allow_cpu_fallback": True,
        "batching": {"enabled": False, "max_batch_size": 8, "max_delay_ms": 5.5, "max_queue_size": 16},
        "threads": {"intra_op": 2, "inter_op": 3},
        "max_request_bytes": 4096,
    }
    config.write_text(dump_yaml(doc), encoding="utf-8")
    assert runtime_settings_dict(load_project(model_repo)) == {
        "name": "linear",
        "version": "7",
        "platform": "onnxruntime",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}],
        "device": "gpu",
        "providers": [{"name": "TensorrtExecutionProvider", "options": {"trt_fp16_enable": True}}],
        "allow_cpu_fallback": True,
        "batching": {"enabled": False, "max_batch_size": 8, "max_delay_ms": 5.5, "max_queue_size": 16},
        "threads": {"intra_op": 2, "inter_op": 3},
        "max_request_bytes": 4096,
        "warmup": True,  # the contract's: mlgit always warms up with the sample
        "adapter": None,  # no image feeds a linear model; the image-segmentation example's case carries one
        "drift": None,  # no monitoring.drift.reference file: tests/config/test_drift_profile.py renders one
    }


@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_mlgit_yaml_defaults_are_the_files_but_the_declared_ones(device: str, model_repo: Path) -> None:
    """An mlgit.yaml that leaves `serving` to its defaults renders what the runtime makes of a file that gives
    only the model's identity and signature, but for MLGIT_YAML_OWN_DEFAULTS."""
    config = model_repo / CONFIG_FILE
    doc = read_yaml(config)
    doc["serving"] = {"device": device}
    config.write_text(dump_yaml(doc), encoding="utf-8")
    rendered = runtime_settings_dict(load_project(model_repo))
    bare = ModelSettings.model_validate({k: rendered[k] for k in ("name", "version", "inputs", "outputs", "device")})
    assert differences(bare.model_dump(mode="json"), rendered) == MLGIT_YAML_OWN_DEFAULTS


def test_the_comparison_sees_a_missing_field_and_a_changed_default() -> None:
    """The checks above are only as good as `leaves`/`differences`: they must see what a drift looks like."""
    written = ModelSettings(providers=[ProviderSpec(name="CPUExecutionProvider")]).model_dump(mode="json")
    del written["threads"]["inter_op"]
    written["batching"]["max_queue_size"] = 7
    loaded = ModelSettings.model_validate(written).model_dump(mode="json")
    assert [path for path in leaves(loaded) if path not in leaves(written)] == ["threads.inter_op"]
    assert differences(written, loaded) == {"threads.inter_op": (ABSENT, 0)}
    assert differences(ModelSettings().model_dump(mode="json"), written) == {
        "threads.inter_op": (0, ABSENT),
        "batching.max_queue_size": (1024, 7),
    }
