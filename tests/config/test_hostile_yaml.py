"""Adversarial mlgit.yaml: alias bombs, deep nesting and huge files are refused at once, never a traceback.

How fast the refusal is: bench/hostile_yaml.py (bench/RESULTS.md); these tests assert the refusal only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgit.config.yamlio import MAX_YAML_BYTES, MAX_YAML_DEPTH
from mlgit.main import app

runner = CliRunner()


def alias_bomb(levels: int = 9) -> str:
    """Nested aliases, `levels` deep, each list naming the previous 9 times: 9**levels strings once expanded."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "exposure:\n  annotations:\n" + "".join(f"    {line}\n" for line in lines)


def _append(repo: Path, text: str) -> None:
    with (repo / "mlgit.yaml").open("a", encoding="utf-8") as handle:
        handle.write(text)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


CASES = [
    ("alias-bomb", lambda r: _append(r, alias_bomb()),
     r"mlgit\.yaml:\d+:\d+: YAML aliases are not supported \(alias \*a0\)"),
    ("merge-key", lambda r: _append(r, "x: &x {replicas: 2}\nenvironments:\n  dev: {<<: *x}\n"),
     r"mlgit\.yaml:\d+:\d+: YAML aliases are not supported"),
    ("deep-flow-nesting", lambda r: _append(r, "exposure:\n  annotations: " + "[" * 5000 + "]" * 5000 + "\n"),
     rf"mlgit\.yaml:\d+:\d+: nested more than {MAX_YAML_DEPTH} levels deep"),
    ("deep-block-nesting", lambda r: _append(r, "deep:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 60))),
     rf"nested more than {MAX_YAML_DEPTH} levels deep"),
    ("60-mb", lambda r: _append(r, ("# " + "x" * 98 + "\n") * 600_000),
     rf"mlgit\.yaml: the file is larger than {MAX_YAML_BYTES // 1024} KiB"),
    ("just-over-the-cap", lambda r: _append(r, "#" * MAX_YAML_BYTES), r"larger than \d+ KiB"),
    ("complex-key", lambda r: _append(r, "exposure:\n  annotations: {? [a, b] : c}\n"),
     r"mlgit\.yaml: a mapping key is not a plain string"),
    ("omap-without-positions", lambda r: _append(r, "exposure:\n  annotations: !!omap [a: 1]\n"),
     r"exposure\.annotations\.a: Input should be a valid string"),
    ("5000-digit-integer", lambda r: _append(r, "exposure:\n  timeout_seconds: " + "1" * 5000 + "\n"),
     r"mlgit\.yaml: unreadable value: Exceeds the limit"),
    ("nul-character", lambda r: _append(r, "\x00\n"), r"mlgit\.yaml: YAML error: unacceptable character"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "breaker", "pattern"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["validate", "render"])
def test_hostile_config_is_refused_cleanly(model_repo: Path, case: str, breaker, pattern: str, command: str) -> None:
    breaker(model_repo)
    before = _snapshot(model_repo)
    result = runner.invoke(app, [command, str(model_repo)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert re.search(pattern, result.output), result.output
    assert _snapshot(model_repo) == before, "a refused config must not write anything"


def test_an_anchor_without_alias_is_fine(model_repo: Path) -> None:
    _append(model_repo, "review: &review {auto_stop_in: 2 days}\n")
    assert runner.invoke(app, ["validate", str(model_repo)]).exit_code == 0


def test_a_config_at_the_cap_is_read(model_repo: Path) -> None:
    size = (model_repo / "mlgit.yaml").stat().st_size
    _append(model_repo, "#" * (MAX_YAML_BYTES - size - 1) + "\n")
    assert (model_repo / "mlgit.yaml").stat().st_size == MAX_YAML_BYTES
    assert runner.invoke(app, ["validate", str(model_repo)]).exit_code == 0
