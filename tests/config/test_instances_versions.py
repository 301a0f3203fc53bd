"""mlgit.yaml environments.<env>.instances, model.versions and environments.<env>.versions: defaults and bad input
(exit 1, the field named, no traceback)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgit.config.load import load_project
from mlgit.errors import MlgitError
from mlgit.main import app
from mlgit.targets import instance_target, targets_of

runner = CliRunner()

INSTANCES = """environments:
  dev: {}
  prod:
    instances:
      eu: {}
      us: {host: us.linear.example.com, replicas: 3, autoscaling: {enabled: false}}
"""


def _append(repo: Path, text: str) -> None:
    with (repo / "mlgit.yaml").open("a") as handle:
        handle.write(text)


def _domain(repo: Path) -> str:
    return load_project(repo, warn=False).config.domain


def test_instances_get_hosts_names_and_labels_of_their_own(model_repo: Path) -> None:
    domain = _domain(model_repo)
    _append(model_repo, INSTANCES.replace("linear.example.com", f"linear.{domain}"))
    config = load_project(model_repo, warn=False).config
    eu, us = targets_of(config, "prod")
    # Beside prod's own host (<name>.<domain>), in its parent domain.
    assert (eu.name, eu.host, eu.instance, eu.display_name) == (
        "linear-eu",
        f"linear-eu.{domain}",
        "linear-prod-eu",
        "prod/eu",
    )
    assert eu.autoscaling is not None and eu.autoscaling.min_replicas == 2  # the production default, inherited
    assert (us.host, us.replicas, us.autoscaling, us.tls_secret) == (f"us.linear.{domain}", 3, None, "linear-us-tls")
    assert eu.selector != us.selector and eu.selector.endswith("mlgit.dev/instance=eu")
    assert [t.display_name for t in targets_of(config, "prod", instance="us")] == ["prod/us"]
    assert [t.display_name for t in targets_of(config, "dev")] == ["dev"]
    with pytest.raises(MlgitError, match=r"environment 'prod' has no instance 'asia': its instances are eu, us"):
        instance_target(config, "prod", "asia")
    with pytest.raises(MlgitError, match=r"environment 'dev' has no instance 'eu': it declares no instances"):
        targets_of(config, "dev", instance="eu")


LONG = "a" * 60
V2 = "  versions: [{version: '2', path: model/model.onnx}]\n"
# (id, lines added to the model section, environments appended, regex the error output must match)
CASES = [
    ("instance-host-outside-domain", "", "environments:\n  prod:\n    instances:\n      eu: {host: eu.other.org}\n",
     r"environments\.prod\.instances\.eu\.host: host 'eu\.other\.org' is outside the domain"),
    ("instance-name-not-dns", "", "environments:\n  prod:\n    instances:\n      EU_1: {}\n",
     r"environments\.prod\.instances\.EU_1.*not a DNS label"),
    ("instance-label-too-long", "", f"environments:\n  prod:\n    instances:\n      {LONG}: {{}}\n",
     rf"environments\.prod\.instances\.{LONG}: the instance label 'linear-prod-{LONG}' has 72 characters"),
    ("instance-zero-replicas", "", "environments:\n  prod:\n    instances:\n      eu: {replicas: 0}\n",
     r"environments\.prod\.instances\.eu\.replicas: Input should be greater than or equal to 1"),
    ("instances-and-canary", "", "environments:\n  prod:\n    canary: {}\n    instances:\n      eu: {}\n",
     r"environments\.prod\.instances: an environment with instances cannot have a canary yet"),
    ("version-not-shipped", "", "environments:\n  prod:\n    versions: ['1', '7']\n",
     r"environments\.prod\.versions: 7 not shipped; the image holds versions 1"),
    ("version-without-default", V2, "environments:\n  prod:\n    versions: ['2']\n",
     r"environments\.prod\.versions: must include model\.version 1, which the unversioned URLs serve"),
    ("version-twice", V2.replace("'2'", "'1'"), "", r"model\.versions: version 1 is shipped twice"),
    ("extra-version-twice", V2.replace("]", ", {version: '2', path: model/model.onnx}]"), "",
     r"model\.versions: version 2 is shipped twice"),
    ("env-version-twice", "", "environments:\n  dev:\n    versions: ['1', '1']\n",
     r"environments\.dev\.versions: version 1 is listed twice"),
    ("instance-names-collide", "", "environments:\n  dev:\n    instances:\n      eu: {}\n      eu-exposure: {}\n",
     r"environments\.dev\.instances\.eu-exposure: the object name linear-eu-exposure would belong to this instance "
     r"and to instance eu"),
    ("instance-tls-names-collide", "", "environments:\n  dev:\n    instances:\n      eu-tls: {}\n      eu: {}\n",
     r"environments\.dev\.instances\.eu: the object name linear-eu-tls would belong to this instance "
     r"and to instance eu-tls"),
    ("instance-hosts-same", "", "environments:\n  dev:\n    instances:\n      eu: {host: DOMAIN}\n"
     "      us: {host: DOMAIN}\n",
     r"environments\.dev\.instances\.us\.host: \S+ is also the host of instance eu"),
    ("version-file-missing", V2.replace("model/model.onnx", "model/v2.onnx"), "",
     r"mlgit\.yaml:\d+:\d+: model\.versions\[0\]\.path: model/v2\.onnx not found"),
]  # fmt: skip


def _write(repo: Path, model_lines: str, environments: str) -> None:
    path = repo / "mlgit.yaml"
    text = path.read_text()
    domain = load_project(repo, warn=False).config.domain
    path.write_text(text.replace("model:\n", "model:\n" + model_lines, 1) + environments.replace("DOMAIN", domain))


@pytest.mark.parametrize(("case", "model_lines", "environments", "pattern"), CASES, ids=[c[0] for c in CASES])
def test_bad_instances_and_versions_are_reported(
    model_repo: Path, case: str, model_lines: str, environments: str, pattern: str
) -> None:
    _write(model_repo, model_lines, environments)
    result = runner.invoke(app, ["validate", str(model_repo)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert re.search(pattern, result.output), result.output


def test_an_extra_version_needs_the_same_signature(model_repo: Path, tmp_path: Path) -> None:
    from tests.onnx_models import write_linear_model

    fixed = write_linear_model(tmp_path / "fixed.onnx", batch=1)  # x[1, 4], not x[batch, 4]
    (model_repo / "model" / "v2").mkdir()
    shutil.copyfile(fixed, model_repo / "model" / "v2" / "model.onnx")
    _write(model_repo, "  versions: [{version: '2', path: model/v2/model.onnx}]\n", "")
    result = runner.invoke(app, ["validate", str(model_repo)])
    assert result.exit_code == 1, result.output
    assert re.search(r"model\.versions\[0\]: version 2 \(model/v2/model\.onnx\) has another signature", result.output)
