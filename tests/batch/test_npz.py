"""The batch runner over .npz files of the iris example: onnxruntime's answers, bad files, resuming, shards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlgit_serving.batch.errors import BatchError
from mlgit_serving.batch.runner import Shard, run_batch
from mlgit_serving.model import OnnxModel
from tests.batch.conftest import IRIS, assert_same_outputs, onnxruntime_answers
from tests.batch.models import runtime_repository, write_lookup

MODEL = IRIS / "model" / "model.onnx"
FILES = 300


def write_iris_inputs(folder: Path, count: int = FILES, seed: int = 0) -> dict[str, np.ndarray]:
    """`count` files of 1 to 6 rows, and two of 45 (more than the example's max_batch_size of 32)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {f"{i:04d}.npz": rng.normal(5, 2, (int(rng.integers(1, 7)), 4)).astype(np.float32) for i in range(count)}
    arrays |= {name: rng.normal(5, 2, (45, 4)).astype(np.float32) for name in ("big-a.npz", "sub/big-b.npz")}
    for name, array in arrays.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        np.savez(folder / name, input=array)
    return arrays


def test_a_few_hundred_files_get_onnxruntimes_outputs(tmp_path: Path, iris_runtime: Path) -> None:
    arrays = write_iris_inputs(tmp_path / "in")
    summary = run_batch(iris_runtime, str(tmp_path / "in"), str(tmp_path / "out"))
    assert (summary.done, summary.skipped, summary.failed) == (len(arrays), 0, 0)
    assert summary.rows == sum(a.shape[0] for a in arrays.values())
    for name, array in arrays.items():
        assert_same_outputs(tmp_path / "out" / name, onnxruntime_answers(MODEL, {"input": array}))
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == sorted(arrays)


def test_rows_of_many_files_share_runs_up_to_the_batch_size(
    tmp_path: Path, iris_runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []
    run = OnnxModel.run

    def counted(self: OnnxModel, inputs: dict[str, np.ndarray], names: list[str]) -> tuple[list[np.ndarray], float]:
        runs.append(next(iter(inputs.values())).shape[0])
        return run(self, inputs, names)

    monkeypatch.setattr(OnnxModel, "run", counted)
    for i in range(100):
        np.savez(tmp_path / f"{i:03d}.npz", input=np.full((1, 4), i, np.float32))
    np.savez(tmp_path / "wide.npz", input=np.ones((70, 4), np.float32))  # sorted last: sliced 32 + 32 + 6
    summary = run_batch(iris_runtime, str(tmp_path), str(tmp_path.parent / "out"))
    assert summary.done == 101
    assert runs == [32, 32, 32, 32, 32, 10]  # 100 one-row files, then the wide file's slices, 6 rows topping up 4


def test_bad_files_are_named_and_the_run_goes_on(tmp_path: Path, iris_runtime: Path) -> None:
    arrays = write_iris_inputs(tmp_path / "in", count=20)
    good = (tmp_path / "in" / "0000.npz").read_bytes()
    (tmp_path / "in" / "corrupt.npz").write_bytes(good[: len(good) // 2])
    np.savez(tmp_path / "in" / "float64.npz", input=np.ones((2, 4)))
    np.savez(tmp_path / "in" / "five-columns.npz", input=np.ones((2, 5), np.float32))
    np.savez(tmp_path / "in" / "misnamed.npz", x=np.ones((2, 4), np.float32))
    lines: list[str] = []
    summary = run_batch(iris_runtime, str(tmp_path / "in"), str(tmp_path / "out"), report=lines.append)
    assert (summary.done, summary.failed) == (len(arrays), 4)
    reasons = dict(summary.failures)
    assert "not a (complete) zip archive" in reasons["corrupt.npz"]
    assert "is float64; the model takes float32 (FP32)" in reasons["float64.npz"]
    assert "has shape [2, 5]; the model takes [-1, 4]" in reasons["five-columns.npz"]
    assert "missing input(s) ['input']: the file has ['x']" in reasons["misnamed.npz"]
    assert lines == [f"failed: {name}: {reason}" for name, reason in summary.failures]
    assert not any((tmp_path / "out" / name).exists() for name in reasons)
    assert "4 failed" in summary.line()


def test_a_second_run_skips_and_a_deleted_output_alone_is_recomputed(tmp_path: Path, iris_runtime: Path) -> None:
    arrays = write_iris_inputs(tmp_path / "in", count=30)
    out = tmp_path / "out"
    assert run_batch(iris_runtime, str(tmp_path / "in"), str(out)).done == len(arrays)
    again = run_batch(iris_runtime, str(tmp_path / "in"), str(out))
    assert (again.done, again.skipped, again.rows) == (0, len(arrays), 0)
    written = {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
    (out / "0007.npz").unlink()
    third = run_batch(iris_runtime, str(tmp_path / "in"), str(out))
    assert (third.done, third.skipped) == (1, len(arrays) - 1)
    assert_same_outputs(out / "0007.npz", onnxruntime_answers(MODEL, {"input": arrays["0007.npz"]}))
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in written.items() if p.name != "0007.npz")


def test_shards_split_the_sorted_inputs_between_them(tmp_path: Path, iris_runtime: Path) -> None:
    names = sorted(write_iris_inputs(tmp_path / "in", count=25))
    seen = []
    for index in range(3):
        out = tmp_path / f"out{index}"
        summary = run_batch(iris_runtime, str(tmp_path / "in"), str(out), shard=Shard(index, 3))
        mine = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.npz"))
        assert mine == sorted(names[index::3]) and summary.done == len(mine)
        seen += mine
    assert sorted(seen) == names
    assert Shard.parse("2/3") == Shard(2, 3)
    for bad in ("3/3", "1", "-1/2", "a/b"):
        with pytest.raises(ValueError, match="INDEX/COUNT"):
            Shard.parse(bad)


def test_a_file_that_breaks_its_batch_fails_alone(tmp_path: Path) -> None:
    """onnxruntime refuses the whole stacked run over an index past its table; each file then runs alone."""
    repo = runtime_repository(
        tmp_path / "models", "lookup", write_lookup(tmp_path / "lookup.onnx"),
        {"batching": {"enabled": True, "max_batch_size": 16}},
    )  # fmt: skip
    (tmp_path / "in").mkdir()
    for i in range(10):
        np.savez(tmp_path / "in" / f"{i}.npz", index=np.array([i, 9 - i], np.int64))
    np.savez(tmp_path / "in" / "out-of-range.npz", index=np.array([99], np.int64))
    summary = run_batch(repo, str(tmp_path / "in"), str(tmp_path / "out"))
    assert (summary.done, summary.failed) == (10, 1)
    assert summary.failures[0][0] == "out-of-range.npz" and "99" in summary.failures[0][1]
    with np.load(tmp_path / "out" / "3.npz") as archive:
        np.testing.assert_array_equal(archive["row"], np.arange(30, dtype=np.float32).reshape(10, 3)[[3, 6]])


def test_outputs_inside_the_inputs_are_refused(tmp_path: Path, iris_runtime: Path) -> None:
    write_iris_inputs(tmp_path / "in", count=2)
    with pytest.raises(BatchError, match="is inside the input location"):
        run_batch(iris_runtime, str(tmp_path / "in"), str(tmp_path / "in" / "out"))


def test_a_missing_input_folder_stops_the_run(tmp_path: Path, iris_runtime: Path) -> None:
    with pytest.raises(BatchError, match=r"input folder .*nowhere not found"):
        run_batch(iris_runtime, str(tmp_path / "nowhere"), str(tmp_path / "out"))


def test_json_requests_are_taken_as_the_server_takes_them(tmp_path: Path, iris_runtime: Path) -> None:
    from mlgit_serving.errors import BadRequest
    from mlgit_serving.signature import Signature, Tensor
    from mlgit_serving.validation import decode_request

    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    data = [*rows[0], *rows[1]]
    request = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 4], "data": data}]}
    wrong = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [2, 4], "data": data}]}
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "request.json").write_text(json.dumps(request))
    (tmp_path / "in" / "fp64.json").write_text(json.dumps(wrong))
    (tmp_path / "in" / "broken.json").write_text('{"inputs": [')
    summary = run_batch(iris_runtime, str(tmp_path / "in"), str(tmp_path / "out"))
    assert (summary.done, summary.failed) == (1, 2)
    assert_same_outputs(tmp_path / "out" / "request.npz", onnxruntime_answers(MODEL, {"input": np.float32(rows)}))
    spec = Tensor("input", "FP32", (-1, 4), np.dtype("<f4"))
    with pytest.raises(BadRequest) as server:
        decode_request(wrong, memoryview(b""), Signature({"input": spec}, {}))
    reasons = dict(summary.failures)
    assert reasons["fp64.json"] == server.value.message  # the server's own words for the same body
    assert reasons["broken.json"].startswith("request body is not valid JSON")


def test_a_write_cut_short_leaves_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outputs present = done holds only if an output appears whole or not at all."""
    import os

    from mlgit_serving.batch.storage import LocalStorage

    storage = LocalStorage(tmp_path, create=True)

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        storage.write("sub/a.npz", b"x" * 1000)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []
    monkeypatch.undo()
    storage.write("sub/a.npz", b"whole")
    assert storage.list() == ["sub/a.npz"] and (tmp_path / "sub" / "a.npz").read_bytes() == b"whole"
