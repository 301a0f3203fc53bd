"""Placeholder values (example.com, an issuer nobody chose) warn on stderr with file:line:col and field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgit.config.placeholders import is_placeholder_host
from mlgit.main import app
from tests.conftest import REPO_ROOT

runner = CliRunner()


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(text))


def test_scaffold_placeholders_warn_with_file_line_and_field(model_repo: Path) -> None:
    config = model_repo / "mlgit.yaml"
    result = runner.invoke(app, ["validate", str(model_repo)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {config}:{_line_of(config, 'name:')}:1: tls.issuer: not set, so certificates ask the "
        "ClusterIssuer 'letsencrypt-prod', which your cluster may not have; name the issuer it has (or set "
        "tls.enabled: false)",
        f"warning: {config}:{_line_of(config, 'domain:')}:1: domain: models.example.com is a placeholder (reserved "
        "for documentation), so no host of this model resolves; set your DNS domain",
        f"warning: {config}:{_line_of(config, 'image:') + 1}:3: image.repository: registry.example.com is a "
        "placeholder registry; pushes and pulls will fail until you set your image repository",
    ]
    assert "warning" not in result.stdout


def test_json_output_stays_parseable_with_warnings(model_repo: Path) -> None:
    result = runner.invoke(app, ["render", str(model_repo), "--check", "--json"])
    assert result.exit_code == 0, result.output
    assert "placeholder" in result.stderr
    assert json.loads(result.stdout)["ok"] is True


def test_configured_values_do_not_warn(tmp_path: Path, linear_onnx: Path) -> None:
    from mlgit.scaffold import InitOptions, init_repository

    repo = init_repository(
        InitOptions(target=tmp_path / "r", model=linear_onnx, domain="ml.acme.io", registry="registry.acme.io/ml/r")
    )
    with (repo / "mlgit.yaml").open("a") as handle:
        handle.write("tls:\n  issuer: acme-ca\n")
    result = runner.invoke(app, ["validate", str(repo)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_an_environment_tls_without_issuer_is_named(tmp_path: Path, linear_onnx: Path) -> None:
    from mlgit.scaffold import InitOptions, init_repository

    repo = init_repository(
        InitOptions(target=tmp_path / "r", model=linear_onnx, domain="ml.acme.io", registry="registry.acme.io/ml/r")
    )
    with (repo / "mlgit.yaml").open("a") as handle:
        handle.write("tls: {issuer: acme-ca}\nenvironments:\n  dev: {}\n  prod:\n    tls: {issuer_kind: Issuer}\n")
    result = runner.invoke(app, ["validate", str(repo)])
    assert result.exit_code == 0, result.output
    (warning,) = result.stderr.splitlines()
    assert (
        f"{repo / 'mlgit.yaml'}:{_line_of(repo / 'mlgit.yaml', '    tls:')}:5: environments.prod.tls.issuer: "
        in warning
    )
    assert "the Issuer 'letsencrypt-prod'" in warning


def test_the_examples_keep_their_placeholders_and_show_them(example_repo: Callable[[str], Path]) -> None:
    repo = example_repo("iris-classifier")
    result = runner.invoke(app, ["validate", str(repo)])
    assert result.exit_code == 0, result.output
    assert "domain: models.example.com is a placeholder" in result.stderr
    assert (REPO_ROOT / "examples" / "iris-classifier" / "mlgit.yaml").read_text().count("example.com") == 1


@pytest.mark.parametrize(
    ("host", "placeholder"),
    [("example.com", True), ("models.example.org", True), ("registry.example:5000", True), ("x.invalid", True),
     ("examples.com", False), ("example.com.acme.io", False), ("registry.gitlab.com", False)],
)  # fmt: skip
def test_placeholder_hosts(host: str, placeholder: bool) -> None:
    assert is_placeholder_host(host) is placeholder
