"""`mlgit render [--check]`, `mlgit schema` and `--version`."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from ruamel.yaml import YAML
from typer.testing import CliRunner

from mlgit import __version__
from mlgit.main import app

runner = CliRunner()


def test_check_lists_drift_and_render_fixes_it(model_repo: Path) -> None:
    config = model_repo / "mlgit.yaml"
    config.write_text(config.read_text().replace("  device: cpu\n", "  device: cpu\n  threads: {intra_op: 2}\n"))
    before = (model_repo / "model-settings.json").read_bytes()
    check = runner.invoke(app, ["render", str(model_repo), "--check"])
    assert check.exit_code == 1
    assert "differs: model-settings.json" in check.output
    assert (model_repo / "model-settings.json").read_bytes() == before, "--check must change nothing"
    fix = runner.invoke(app, ["render", str(model_repo)])
    assert fix.exit_code == 0 and "wrote model-settings.json" in fix.output
    assert json.loads((model_repo / "model-settings.json").read_text())["threads"]["intra_op"] == 2
    assert runner.invoke(app, ["render", str(model_repo), "--check"]).exit_code == 0


def test_check_reports_a_missing_generated_file(model_repo: Path) -> None:
    (model_repo / "Dockerfile").unlink()
    check = runner.invoke(app, ["render", str(model_repo), "--check"])
    assert check.exit_code == 1 and "missing: Dockerfile" in check.output


def test_comments_in_mlgit_yaml_survive_init_overrides(tmp_path: Path, linear_onnx: Path) -> None:
    from mlgit.scaffold import InitOptions, init_repository

    repo = init_repository(
        InitOptions(target=tmp_path / "r", model=linear_onnx, domain="ml.acme.io", registry="registry.acme.io/ml/r")
    )
    text = (repo / "mlgit.yaml").read_text()
    assert text.startswith("# mlgit.yaml: the single source of truth")
    assert "domain: ml.acme.io" in text and "repository: registry.acme.io/ml/r" in text


def test_schema_is_json_schema_that_accepts_a_real_config(model_repo: Path) -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    config = YAML(typ="safe").load((model_repo / "mlgit.yaml").read_text())
    jsonschema.Draft202012Validator(schema).validate(config)
    assert schema["properties"]["name"]["description"]


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"mlgit {__version__}"


def test_every_command_has_help() -> None:
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Usage" in result.output
