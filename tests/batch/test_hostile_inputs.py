"""Inputs made to hurt: .npz files that inflate to gigabytes, names that point outside the output location,
and the temporary files a killed run leaves behind."""

from __future__ import annotations

import io
import os
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlgit_serving.batch.adapters import InputReader
from mlgit_serving.batch.errors import BadFile
from mlgit_serving.batch.runner import load_model, run_batch
from mlgit_serving.batch.storage import STALE_SECONDS, LocalStorage
from tests.batch.models import npz_bytes

ZEROS = 64 * 2**20  # bytes of zeros in a bomb: 64 KiB compressed


def bomb(name: str, rows: int = ZEROS // 16, **arrays: np.ndarray) -> bytes:
    """A compressed .npz whose array `name` is `rows` x 4 float32 zeros, written without holding them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for other, array in arrays.items():
            with archive.open(other + ".npy", "w") as member:
                np.lib.format.write_array(member, array)
        with archive.open(name + ".npy", "w", force_zip64=True) as member:
            header = {"descr": "<f4", "fortran_order": False, "shape": (rows, 4)}
            np.lib.format.write_array_header_1_0(member, header)
            chunk = bytes(2**20)
            for _ in range(rows * 16 // len(chunk)):
                member.write(chunk)
    return buffer.getvalue()


def peak_bytes_reading(reader: InputReader, data: bytes) -> tuple[int, BaseException | None]:
    tracemalloc.start()  # numpy reports its arrays' memory to tracemalloc
    try:
        reader.read("npz", data)
        error = None
    except BadFile as exc:
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error


@pytest.fixture(scope="module")
def reader(iris_runtime: Path) -> InputReader:
    loaded = load_model(iris_runtime)
    return InputReader(loaded.model.signature, loaded.settings.adapter)


def test_an_array_the_model_does_not_take_is_refused_unread(reader: InputReader) -> None:
    peak, error = peak_bytes_reading(reader, bomb("junk", input=np.ones((2, 4), np.float32)))
    assert error is not None and "['junk'] are not inputs of the model" in str(error)
    assert peak < ZEROS // 4, f"{peak} bytes allocated: the unused array was inflated"


def test_an_input_over_the_size_limit_is_refused_by_its_header(
    reader: InputReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "max_file_bytes", 2**20)
    peak, error = peak_bytes_reading(reader, bomb("input"))
    assert error is not None, "a 64 MiB input passed a 1 MiB limit"
    assert "'input'" in str(error) and "MLGIT_BATCH_MAX_FILE_BYTES" in str(error) and str(ZEROS) in str(error)
    assert peak < ZEROS // 4


def test_the_size_limit_is_read_from_the_environment(
    tmp_path: Path, iris_runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "small.npz").write_bytes(npz_bytes(input=np.ones((2, 4), np.float32)))
    (tmp_path / "in" / "big.npz").write_bytes(npz_bytes(input=np.ones((100, 4), np.float32)))
    monkeypatch.setenv("MLGIT_BATCH_MAX_FILE_BYTES", "1000")
    summary = run_batch(iris_runtime, str(tmp_path / "in"), str(tmp_path / "out"))
    assert (summary.done, summary.failed) == (1, 1)
    assert summary.failures[0][0] == "big.npz" and "1600 bytes" in summary.failures[0][1]


def test_object_arrays_are_refused_by_name(reader: InputReader) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, input=np.array([[1, "a", None, 2.0]], dtype=object))
    with pytest.raises(BadFile, match="'input' holds Python objects"):
        reader.read("npz", buffer.getvalue())


def test_unsafe_names_in_a_bucket_fail_and_nothing_is_written_outside(
    s3: Any, iris_runtime: Path, tmp_path: Path
) -> None:
    escape = tmp_path / "escape"  # an absolute name: the key is "in/" + "/tmp/.../escape/x.npz"
    body = npz_bytes(input=np.ones((1, 4), np.float32))
    keys = ["in/ok.npz", f"in/{escape}/x.npz", "in/a/../../up.npz", "in/./dot.npz", "in/back\\slash.npz"]
    for key in keys:
        s3.put_object(Bucket=s3.bucket, Key=key, Body=body)
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=s3.bucket)["Contents"])
    assert listed == sorted(keys)  # the server keeps the keys as they are
    summary = run_batch(iris_runtime, f"s3://{s3.bucket}/in", str(tmp_path / "out"))
    assert (summary.done, summary.failed) == (1, 4)
    assert sorted(name for name, _ in summary.failures) == sorted(k.removeprefix("in/") for k in keys[1:])
    assert not escape.exists() and not (tmp_path / "up.npz").exists()
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*"))
    assert written == ["ok.npz"]


def test_local_storage_writes_only_inside_its_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "out", create=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path / "elsewhere")
    for name in [str(tmp_path / "abs.npz"), "../up.npz", "a/../../up.npz", "link/x.npz"]:
        with pytest.raises(OSError, match=r"outside|refused"):
            storage.write(name, b"x")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["elsewhere", "link", "out"]


def test_a_backslash_in_a_local_name_fails_that_file(tmp_path: Path, iris_runtime: Path) -> None:
    (tmp_path / "in").mkdir()
    for name in ["ok.npz", "back\\slash.npz"]:
        (tmp_path / "in" / name).write_bytes(npz_bytes(input=np.ones((1, 4), np.float32)))
    summary = run_batch(iris_runtime, str(tmp_path / "in"), str(tmp_path / "out"))
    assert (summary.done, summary.failed) == (1, 1) and summary.failures[0][0] == "back\\slash.npz"


def test_a_killed_runs_old_temporaries_are_removed_on_start(tmp_path: Path, iris_runtime: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.npz").write_bytes(npz_bytes(input=np.ones((1, 4), np.float32)))
    out = tmp_path / "out" / "sub"
    out.mkdir(parents=True)
    old, fresh, other = out / ".a.npz.k2_x9q0z.tmp", out / ".b.npz.abcdefgh.tmp", out / ".notes.tmp"
    for path in (old, fresh, other):
        path.write_bytes(b"partial")
    long_ago = time.time() - STALE_SECONDS - 60
    for path in (old, other):
        os.utime(path, (long_ago, long_ago))
    summary = run_batch(iris_runtime, str(tmp_path / "in"), str(tmp_path / "out"))
    assert summary.done == 1
    assert not old.exists(), "a killed run's temporary file stayed"
    assert fresh.exists() and other.exists()  # maybe another shard's write in flight; not ours by its name
