"""The evidence: models found in git, signature changes, test reports, and the description's shape."""

from __future__ import annotations

import os
from pathlib import Path

from mlgit.config.load import load_project
from mlgit.config.serving import Signature, TensorSpec
from mlgit.policy.check import CheckResult
from mlgit.promote.evidence import Evidence, commit_message, description, junit_summary
from mlgit.promote.git import Git
from mlgit.promote.models import ModelFacts, model_at, signature_changes, source_commit
from mlgit.promote.plan import Plan
from tests.onnx_models import write_linear_model
from tests.promote.support import IMAGE_A, IMAGE_B, Remote

PIN = "deploy/overlays/staging/image/kustomization.yaml"


def _sig(inputs: list[tuple[str, str, list[int]]], outputs: list[tuple[str, str, list[int]]]) -> Signature:
    spec = lambda t: TensorSpec(name=t[0], datatype=t[1], shape=t[2])  # noqa: E731
    return Signature(inputs=[spec(t) for t in inputs], outputs=[spec(t) for t in outputs])


def test_signature_changes_are_exact() -> None:
    old = _sig([("x", "FP32", [-1, 4])], [("y", "FP32", [-1, 3]), ("p", "FP32", [-1])])
    new = _sig([("x", "FP32", [8, 4])], [("y", "FP64", [-1, 3]), ("z", "INT64", [-1])])
    assert signature_changes(old, new) == [
        "input `x`: FP32 [-1, 4] -> FP32 [8, 4]",
        "output `p` removed (was FP32 [-1])",
        "output `z` added: INT64 [-1]",
        "output `y`: FP32 [-1, 3] -> FP64 [-1, 3]",
    ]
    assert signature_changes(old, old) == []


def test_the_model_an_image_serves_is_found_through_the_trailer(remote: Remote) -> None:
    g = Git(remote.repo, "origin", os.environ)
    built = g.head()
    first = model_at(g, built, "model/model.onnx")
    assert first.opsets == {"ai.onnx": 17}
    assert first.signature is not None and first.signature.inputs[0].name == "x"
    assert source_commit(g, "HEAD", "deploy/overlays/prod/image/kustomization.yaml") == built  # never promoted
    # A promotion commit names its source; the model changes on main afterwards.
    promoted = g.commit_file(built, PIN, b"x\n", f"Promote\n\nMlgit-Source-Commit: {built}\n")
    write_linear_model(remote.repo / "model" / "model.onnx", opset=18)
    newer = remote.commit("opset 18")
    assert source_commit(g, promoted, PIN) == built
    assert model_at(g, newer, "model/model.onnx").opsets == {"ai.onnx": 18}
    assert model_at(g, newer, "model/missing.onnx").note == f"model/missing.onnx is not in commit {newer[:12]}"


def test_git_lfs_pointers_give_the_sha256_only(remote: Remote) -> None:
    oid = "c" * 64
    (remote.repo / "model" / "model.onnx").write_text(
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize 123\n", encoding="utf-8"
    )
    facts = model_at(Git(remote.repo, "origin", os.environ), remote.commit("lfs"), "model/model.onnx")
    assert (facts.sha256, facts.signature, facts.note) == (oid, None, "Git LFS pointer: signature not read")


def test_test_report_summary(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    report.write_text('<testsuites><testsuite tests="5" failures="1" errors="0" skipped="1"/></testsuites>', "utf-8")
    assert junit_summary(report) == "FAILED: 3 passed, 1 failed, 1 skipped (report.xml)"
    report.write_text('<testsuite tests="2" failures="0" errors="0" skipped="0"/>', "utf-8")
    assert junit_summary(report) == "passed: 2 passed, 0 failed, 0 skipped (report.xml)"
    assert junit_summary(tmp_path / "missing.xml") == f"report {tmp_path / 'missing.xml'} not found"
    assert junit_summary(None) == "no test report given"


def test_description_and_commit_message(model_repo: Path) -> None:
    project = load_project(model_repo)
    plan = Plan(
        "staging", "prod", IMAGE_B, "the pin of staging in git", False, "deploy/overlays/prod/image/kustomization.yaml"
    )
    old = ModelFacts("1" * 40, "d" * 64, {"ai.onnx": 17}, project.model.signature)
    changed = _sig([("x", "FP32", [-1, 4])], [("y", "FP32", [-1, 2])])
    new = ModelFacts("2" * 40, "e" * 64, {"ai.onnx": 18, "ai.onnx.ml": 3}, changed)
    evidence = Evidence(
        plan=plan, model_name="linear", current_image=IMAGE_A, new_model=new, current_model=old,
        policy=CheckResult(["prod"], [], []), tests="passed: 2 passed, 0 failed, 0 skipped (r.xml)",
        smoke="12 ms for the sample request on staging", links=[("source pipeline", "https://g/p/1")],
        manifest_diff="--- a\n+++ b\n-old\n+new\n",
    )  # fmt: skip
    text = description(evidence)
    assert f"| image | `{IMAGE_A}` | `{IMAGE_B}` |" in text
    assert f"| model sha256 | `{'d' * 64}` | `{'e' * 64}` |" in text
    assert "| ONNX opsets | ai.onnx 17 | ai.onnx 18, ai.onnx.ml 3 |" in text
    assert "- **changed**: output `y`: FP32 [-1, 3] -> FP32 [-1, 2]" in text
    assert "**Links**: [source pipeline](https://g/p/1)" in text
    assert "```diff\n--- a\n+++ b\n-old\n+new\n```\n\n</details>" in text
    message = commit_message(evidence)
    assert message.startswith("Promote staging to prod: sha256:bbbbbbbbbbbb\n\n")
    assert message.endswith(f"Mlgit-Image: {IMAGE_B}\nMlgit-Source-Commit: {'2' * 40}\n")
