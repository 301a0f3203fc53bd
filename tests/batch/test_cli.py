"""`mlgit batch [DIR] --input --output [--shard]`: the real command line, its output and exit codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.batch.conftest import IRIS
from tests.build.fixtures import mlgit


def write_inputs(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        np.savez(folder / f"{i:02d}.npz", input=np.full((2, 4), i / 10, np.float32))


def test_batch_writes_one_output_per_input_and_says_how_it_went(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in", 12)
    result = mlgit("batch", IRIS, "--input", tmp_path / "in", "--output", tmp_path / "out", "--shard", "0/1")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{i:02d}.npz" for i in range(12)]
    assert "12 done, 0 skipped (outputs present), 0 failed; 24 rows in" in result.stderr
    assert result.stdout == ""  # stdout stays free for a script's own use


def test_a_failed_input_is_named_and_the_exit_code_is_1(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in", 3)
    (tmp_path / "in" / "corrupt.npz").write_bytes(b"PK\x03\x04 cut short")
    result = mlgit("batch", "run", IRIS, "--input", tmp_path / "in", "--output", tmp_path / "out")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert "failed: corrupt.npz: not a .npz file: not a (complete) zip archive, which numpy.savez writes" in lines
    assert any(line.startswith("3 done, 0 skipped (outputs present), 1 failed;") for line in lines)
    assert "error: 1 input(s) failed (named above)" in lines
    assert len(list((tmp_path / "out").iterdir())) == 3


def test_a_bad_shard_is_a_usage_error(tmp_path: Path) -> None:
    result = mlgit("batch", IRIS, "--input", tmp_path, "--output", tmp_path / "out", "--shard", "4/4")
    assert result.returncode == 2
    assert "--shard: shard '4/4': write INDEX/COUNT with 0 <= INDEX < COUNT" in result.stderr


def test_a_run_that_cannot_start_says_why(tmp_path: Path) -> None:
    result = mlgit("batch", IRIS, "--input", tmp_path / "missing", "--output", tmp_path / "out")
    assert result.returncode == 1
    assert f"error: input folder {tmp_path / 'missing'} not found" in result.stderr
