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


def test_check_shows_a_unified_diff_of_what_render_would_change(model_repo: Path) -> None:
    config = model_repo / "mlgit.yaml"
    config.write_text(config.read_text().replace("  device: cpu\n", "  device: cpu\n  threads: {intra_op: 2}\n"))
    check = runner.invoke(app, ["render", str(model_repo), "--check"])
    assert check.exit_code == 1
    diff = check.stdout.splitlines()
    assert "--- a/model-settings.json" in diff and "+++ b/model-settings.json" in diff, check.stdout
    assert any(line.startswith("+") and '"intra_op": 2' in line for line in diff), check.stdout
    assert any(line.startswith("-") and '"intra_op"' in line for line in diff), check.stdout
    assert "differs: model-settings.json" in check.stderr


def test_check_json_reports_drift_with_diffs(model_repo: Path) -> None:
    (model_repo / "Dockerfile").unlink()
    settings = model_repo / "model-settings.json"
    settings.write_text(settings.read_text().replace('"warmup": true', '"warmup": false'))
    check = runner.invoke(app, ["render", str(model_repo), "--check", "--json"])
    assert check.exit_code == 1
    report = json.loads(check.stdout)
    assert report["ok"] is False and report["missing"] == ["Dockerfile"] and report["stale"] == []
    (changed,) = report["changed"]
    assert changed["path"] == "model-settings.json"
    assert '-  "warmup": false,\n+  "warmup": true,\n' in changed["diff"]
    assert report["generated"] > 10 and report["dropped_environments"] == []


def test_json_without_check_is_a_usage_error(model_repo: Path) -> None:
    assert runner.invoke(app, ["render", str(model_repo), "--json"]).exit_code == 2


def test_every_schema_property_is_documented() -> None:
    schema = json.loads(runner.invoke(app, ["schema"]).stdout)

    def undocumented(node: object, path: str) -> list[str]:
        found = []
        if isinstance(node, dict):
            for name, prop in node.get("properties", {}).items():
                if not prop.get("description"):
                    found.append(f"{path}.{name}")
            for key, value in node.items():
                found += undocumented(value, path if key == "properties" else f"{path}/{key}")
        elif isinstance(node, list):
            found += [p for item in node for p in undocumented(item, path)]
        return found

    assert undocumented(schema, "") == []


def _all_commands(group: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    commands = [path]
    for name, command in getattr(group, "commands", {}).items():
        commands += _all_commands(command, (*path, name))
    return commands


def test_switches_show_no_value_type_in_help() -> None:
    import typer

    commands = _all_commands(typer.main.get_command(app))
    assert ("policy", "check") in commands and ("render",) in commands
    for command in commands:
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, command
        assert "<bool>" not in result.stdout, f"mlgit {' '.join(command)} --help:\n{result.stdout}"
    assert "<path>" in runner.invoke(app, ["render", "--help"]).stdout, "options that take a value keep their type"
