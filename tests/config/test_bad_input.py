"""Every bad-input case of mlgit.yaml: exit 1, file:line and the field named, no traceback, nothing written."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlgit.main import app

runner = CliRunner()


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _edit(repo: Path, old: str, new: str) -> None:
    path = repo / "mlgit.yaml"
    text = path.read_text()
    assert old in text, f"{old!r} not in mlgit.yaml"
    path.write_text(text.replace(old, new, 1))


def _append(repo: Path, text: str) -> None:
    with (repo / "mlgit.yaml").open("a") as handle:
        handle.write(text)


def _sample(repo: Path, change: Callable[[dict[str, Any]], object]) -> None:
    path = repo / "model" / "sample.json"
    sample = json.loads(path.read_text())
    change(sample)
    path.write_text(json.dumps(sample))


ENVS = "environments:\n  dev: {}\n  staging: {}\n  prod: {}\n"

# (id, how to break the repo, regex the error output must match)
CASES = [
    ("yaml-syntax", lambda r: _edit(r, "name: linear", "name: [linear"), r"mlgit\.yaml:\d+:\d+: YAML syntax error"),
    ("wrong-type", lambda r: _append(r, "environments:\n  dev:\n    replicas: two\n"),
     r"mlgit\.yaml:\d+:\d+: environments\.dev\.replicas: Input should be a valid integer"),
    ("misspelt-key", lambda r: _append(r, "environments:\n  dev:\n    replcas: 2\n"),
     r"environments\.dev\.replcas: unknown key 'replcas'; did you mean 'replicas'\?"),
    ("misspelt-top-key", lambda r: _append(r, "promoton: {}\n"), r"promoton: unknown key 'promoton'; did you mean 'promotion'\?"),
    ("bad-env-name", lambda r: _append(r, "environments:\n  Prod_1: {}\n"), r"environments\.Prod_1.*not a DNS label"),
    ("duplicate-env", lambda r: _append(r, "environments:\n  dev: {}\n  dev: {}\n"), r"mlgit\.yaml:\d+:\d+: duplicate key 'dev'"),
    ("negative-replicas", lambda r: _append(r, "environments:\n  dev:\n    replicas: -1\n"),
     r"environments\.dev\.replicas: Input should be greater than or equal to 0"),
    ("min-gt-max", lambda r: _append(r, "environments:\n  dev:\n    autoscaling: {enabled: true, min_replicas: 5, max_replicas: 2}\n"),
     r"environments\.dev\.autoscaling\.min_replicas: 5 is greater than max_replicas \(2\)"),
    ("negative-delay", lambda r: _edit(r, "  batching:\n", "  batching:\n    max_delay_ms: -1\n"),
     r"serving\.batching\.max_delay_ms: Input should be greater than or equal to 0"),
    ("missing-model", lambda r: (r / "model" / "model.onnx").unlink(), r"mlgit\.yaml:\d+:\d+: model\.path: model/model\.onnx not found"),
    ("not-onnx", lambda r: (r / "model" / "model.onnx").write_bytes(b"\x00\x01not a model at all" * 10),
     r"model\.onnx: the file is not an ONNX model"),
    ("signature-mismatch", lambda r: _edit(r, '{name: "x", datatype: FP32', '{name: "x", datatype: INT64'),
     r"mlgit\.yaml:\d+:\d+: the signature in mlgit\.yaml disagrees.*\n.*'x' is declared INT64 but the model says FP32"),
    ("promotion-unknown-env", lambda r: _append(r, ENVS + "promotion:\n  order: [dev, qa, prod]\n"),
     r"mlgit\.yaml:\d+:\d+: promotion\.order: names unknown environment\(s\) qa"),
    ("host-not-dns", lambda r: _append(r, "environments:\n  dev:\n    host: under_score.models.example.com\n"),
     r"environments\.dev\.host: .*is not a DNS name"),
    ("host-outside-domain", lambda r: _append(r, "environments:\n  dev:\n    host: iris.other.org\n"),
     r"environments\.dev\.host: host 'iris\.other\.org' is outside the domain"),
    ("gpu-count-on-cpu", lambda r: _edit(r, "  device: cpu\n", "  device: cpu\n  gpus: 2\n"),
     r"mlgit\.yaml:20:3: serving\.gpus: 2 on a CPU model"),
    ("name-starts-with-digit", lambda r: _edit(r, "name: linear", "name: 9linear"), r"mlgit\.yaml:\d+:\d+: name: '9linear' must start with a letter"),
    ("requests-over-limits", lambda r: _edit(r, "  device: cpu\n", "  device: cpu\n  resources: {requests: {memory: 4Gi}, limits: {memory: 1Gi}}\n"),
     r"serving\.resources\.requests\.memory: 4Gi is more than limits\.memory \(1Gi\)"),
    ("bad-annotation-key", lambda r: _append(r, "exposure:\n  annotations: {'bad key!': x}\n"), r"exposure\.annotations: 'bad key!': not valid annotation keys"),
    ("hpa-without-cpu-request", lambda r: _edit(r, "  device: cpu\n", "  device: cpu\n  resources: {requests: {cpu: null}}\n"),
     r"environments\.prod\.autoscaling: a CPU-utilisation HPA needs serving\.resources\.requests\.cpu"),
    ("shared-namespace", lambda r: _append(r, "environments:\n  dev: {namespace: ml}\n  staging: {namespace: ml}\n  prod: {}\n"),
     r"environments\.staging\.namespace: ml is also dev's namespace"),
    ("gpu-without-gpu-provider", lambda r: _edit(r, "  device: cpu\n", "  device: gpu\n  providers: [{name: CPUExecutionProvider}]\n"),
     r"serving\.providers: a GPU model needs CUDAExecutionProvider or TensorrtExecutionProvider"),
    ("nested-provider-options", lambda r: _edit(r, "  device: cpu\n", "  device: cpu\n  providers: [{name: CPUExecutionProvider, options: {arena: {a: 1}}}]\n"),
     r"serving\.providers\.0\.options\.arena"),
    ("model-path-outside-repo", lambda r: _edit(r, "  path: model/model.onnx", "  path: ../model.onnx"),
     r"model\.path: .*must be a relative path inside the repository"),
    ("empty-promotion-order", lambda r: _append(r, "promotion:\n  order: []\n"), r"promotion\.order: List should have at least 1 item"),
    ("kube-context-injection", lambda r: _append(r, "environments:\n  dev: {kube_context: \"a\\nevil: x\"}\n"),
     r"environments\.dev\.kube_context: .*contains a line break"),
    ("ingress-class-injection", lambda r: _append(r, "exposure: {ingress_class: \"nginx\\n  defaultBackend: x\"}\n"),
     r"exposure\.ingress_class: .*is not a DNS name"),
    ("node-selector-bad-key", lambda r: _edit(r, "  device: cpu\n", "  device: cpu\n  node_selector: {'bad key': x}\n"),
     r"serving\.node_selector\.bad key\.\[key\]: .*is not a label key"),
    ("pipeline-version-injection", lambda r: _append(r, "pipeline: {version: '1.0\" evil: \"x'}\n"),
     r"pipeline\.version: String should match pattern"),
    ("sample-data-short", lambda r: _sample(r, lambda s: s["inputs"][0].update(data=s["inputs"][0]["data"][:3])),
     r"sample\.json: the sample does not hold valid tensors\n.*inputs\[0\] 'x': shape \[1, 4\] needs 4 values, 'data' has 3"),
    ("sample-not-objects", lambda r: _sample(r, lambda s: s.update(inputs=["x"])), r"inputs\[0\]: each tensor is an object"),
    ("sample-shape-not-list", lambda r: _sample(r, lambda s: s["inputs"][0].update(shape=4)), r"'shape' must be a list of non-negative integers"),
    ("sample-expected-not-list", lambda r: _sample(r, lambda s: s.update(expected_outputs={"y": 1})), r"'expected_outputs' must be a list of tensors"),
    ("sample-strings-for-numbers", lambda r: _sample(r, lambda s: s["inputs"][0].update(data=["a", "b", "c", "d"])),
     r"sample input 'x': 'data' holds values that are not FP32"),
    ("sample-not-utf8", lambda r: (r / "model" / "sample.json").write_bytes(b"\xff\xfe{}"), r"sample\.json: the sample is not UTF-8 text"),
    ("sample-is-a-directory", lambda r: _edit(r, "    path: model/sample.json", "    path: model"), r"sample request .*model not found \(it is a directory\)"),
    ("not-a-mapping", lambda r: (r / "mlgit.yaml").write_text("- just\n- a list\n"), r"mlgit\.yaml:1:1: mlgit\.yaml must be a mapping"),
    ("wildcard-needs-slug-label", lambda r: _append(r, "review:\n  host: x-{slug}.models.example.com\n  tls: {wildcard: true}\n"),
     r"review\.tls\.wildcard: a wildcard certificate covers \{slug\}\.<rest> only, and review\.host is 'x-\{slug\}"),
    ("review-reencrypt", lambda r: _append(r, "review:\n  exposure: {kind: route, route: {termination: reencrypt}}\n"),
     r"review\.exposure\.route\.termination: reencrypt is for environments; review apps use edge"),
    ("unknown-platform", lambda r: _append(r, "platform: okd\n"), r"platform: Input should be 'kubernetes' or 'openshift'"),
    ("route-termination", lambda r: _append(r, "exposure: {kind: route, route: {termination: passthrough}}\n"),
     r"exposure\.route\.termination: Input should be 'edge' or 'reencrypt'"),
    ("tracing-endpoint-not-http", lambda r: _append(r, "environments:\n  prod:\n    monitoring: {tracing: {otlp_endpoint: 'collector:4317'}}\n"),
     r"environments\.prod\.monitoring\.tracing\.otlp_endpoint: 'collector:4317' is not an http\(s\):// URL"),
    ("payload-logging-redact-comma", lambda r: _append(r, "monitoring: {payload_logging: {url: 'http://sink', redact: ['a,b']}}\n"),
     r"monitoring\.payload_logging\.redact\.0: String should match pattern"),
    ("service-monitor-moved", lambda r: _edit(r, "  device: cpu\n", "  device: cpu\n  service_monitor: true\n"),
     r"mlgit\.yaml:\d+:\d+: serving\.service_monitor: moved to `monitoring: \{enabled: true\}`"),
    ("error-rate-objective", lambda r: _append(r, "environments:\n  prod:\n    monitoring: {objectives: {error_rate: 5}}\n"),
     r"environments\.prod\.monitoring\.objectives\.error_rate: Input should be less than 1"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "breaker", "pattern"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["validate", "render"])
def test_bad_config_is_reported_with_location(model_repo: Path, case: str, breaker, pattern: str, command: str) -> None:
    breaker(model_repo)
    before = _snapshot(model_repo)
    result = runner.invoke(app, [command, str(model_repo)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert re.search(pattern, result.output), result.output
    assert _snapshot(model_repo) == before, "a failed command must not write anything"


def test_all_problems_are_reported_at_once(model_repo: Path) -> None:
    _append(model_repo, "environments:\n  dev:\n    replicas: -1\n    replcas: 2\n")
    result = runner.invoke(app, ["validate", str(model_repo)])
    assert result.exit_code == 1
    assert "2 problems" in result.output
    assert "replicas: Input should be greater" in result.output and "unknown key 'replcas'" in result.output


def test_missing_config_says_how_to_start(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "mlgit.yaml not found" in result.output and "mlgit init" in result.output


def test_usage_error_exits_2(model_repo: Path) -> None:
    result = runner.invoke(app, ["render", str(model_repo), "--no-such-flag"])
    assert result.exit_code == 2
