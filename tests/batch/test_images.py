"""Images through the model's adapter: PNG and FITS pixels become the input as documented, masks come back."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mlgit_serving.batch.runner import Summary, run_batch
from tests.batch.conftest import assert_same_outputs, onnxruntime_answers
from tests.batch.models import fits_bytes, png_bytes, runtime_repository, write_rgb_copier, write_segmenter

ADAPTER = {
    "kind": "image", "formats": ["png", "fits"], "scale": 0.02, "mean": [1.0], "std": [2.0],
    "output": {"name": "mask", "kind": "mask", "threshold": 0.5},
}  # fmt: skip


@pytest.fixture
def segmenter(tmp_path: Path) -> tuple[Path, Path]:
    model = write_segmenter(tmp_path / "seg.onnx")
    settings = {"batching": {"enabled": True, "max_batch_size": 4}, "adapter": ADAPTER}
    return runtime_repository(tmp_path / "models", "seg", model, settings), model


def run(repo: Path, tmp_path: Path, files: dict[str, bytes]) -> Summary:
    (tmp_path / "in").mkdir(exist_ok=True)
    for name, data in files.items():
        (tmp_path / "in" / name).write_bytes(data)
    return run_batch(repo, str(tmp_path / "in"), str(tmp_path / "out"))


def read_mask(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "L"
        return np.asarray(image)


def test_png_pixels_are_scaled_normalised_and_masked(tmp_path: Path, segmenter: tuple[Path, Path]) -> None:
    repo, model = segmenter
    pictures = {f"sky{i}.png": np.random.default_rng(i).integers(0, 256, (8, 8), dtype=np.uint8) for i in range(7)}
    summary = run(repo, tmp_path, {name: png_bytes(p) for name, p in pictures.items()})
    assert (summary.done, summary.failed, summary.rows) == (7, 0, 7)
    for name, pixels in pictures.items():
        image = ((pixels * 0.02 - 1.0) / 2.0).astype(np.float32)[np.newaxis, np.newaxis]
        expected = onnxruntime_answers(model, {"image": image})
        stem = name.removesuffix(".png")
        assert_same_outputs(tmp_path / "out" / f"{stem}.npz", expected)
        mask = read_mask(tmp_path / "out" / f"{stem}.mask.png")
        np.testing.assert_array_equal(mask, np.where(expected["mask"][0, 0] > 0.5, 255, 0))
        assert 0 < (mask == 255).sum() < 64  # the threshold splits these pictures, so a wrong one would show


@pytest.mark.parametrize(
    ("bitpix", "cards"),
    [(8, {}), (16, {"BSCALE": 0.5, "BZERO": -3.0}), (32, {"BZERO": 100}), (-32, {}), (-64, {"BSCALE": "2.0D0"})],
)
def test_fits_data_is_used_as_it_is(
    bitpix: int, cards: dict[str, Any], tmp_path: Path, segmenter: tuple[Path, Path]
) -> None:
    repo, model = segmenter
    stored = np.random.default_rng(bitpix + 100).integers(0, 200, (8, 8)).astype(np.float64)
    if bitpix < 0:
        stored = stored / 7 - 10
    summary = run(repo, tmp_path, {"field.fits": fits_bytes(stored, bitpix, cards)})
    assert summary.failed == 0, summary.failures
    scale, zero = float(str(cards.get("BSCALE", 1)).replace("D", "E")), float(cards.get("BZERO", 0))
    physical = (stored * scale + zero).astype(np.float32)[np.newaxis, np.newaxis]  # no scale, mean or std
    assert_same_outputs(tmp_path / "out" / "field.npz", onnxruntime_answers(model, {"image": physical}))
    assert (tmp_path / "out" / "field.mask.png").is_file()


def test_unusable_images_are_named_with_the_reason(tmp_path: Path, segmenter: tuple[Path, Path]) -> None:
    repo, _ = segmenter
    good = png_bytes(np.zeros((8, 8), np.uint8))
    files = {
        "large.png": png_bytes(np.zeros((8, 10), np.uint8)),
        "truncated.png": good[: len(good) // 2],
        "int64.fits": fits_bytes(np.zeros((8, 8)), 64),
        "cube.fits": fits_bytes(np.zeros((8, 8)), -32, axes=(2,)),
        "photo.jpg": good,  # jpeg is not among the adapter's formats: not an input at all
        "ok.fits": fits_bytes(np.zeros((8, 8)), -32, axes=(1, 1)),  # radio images' frequency and Stokes axes
    }
    summary = run(repo, tmp_path, files)
    assert (summary.done, summary.failed, summary.ignored) == (1, 4, 1)
    reasons = dict(summary.failures)
    assert reasons["large.png"] == (
        "the image is 10x8 pixels (width x height); the model takes 8x8: resize it first "
        "(images are never resized here)"
    )
    assert reasons["truncated.png"].startswith("not a readable image")
    assert reasons["int64.fits"] == "FITS BITPIX 64 is not supported; 8, 16, 32, -32 and -64 are"
    assert "axes [8, 8, 2]; only a 2-D image is read" in reasons["cube.fits"]


def test_an_image_is_done_only_with_its_mask(tmp_path: Path, segmenter: tuple[Path, Path]) -> None:
    repo, _ = segmenter
    files = {f"{i}.png": png_bytes(np.full((8, 8), i, np.uint8)) for i in range(3)}
    assert run(repo, tmp_path, files).done == 3
    (tmp_path / "out" / "1.mask.png").unlink()
    again = run(repo, tmp_path, files)
    assert (again.done, again.skipped) == (1, 2)
    assert (tmp_path / "out" / "1.mask.png").is_file()


def test_rgb_channels_last_with_a_mean_and_std_per_channel(tmp_path: Path) -> None:
    adapter = {"kind": "image", "input": "rgb", "layout": "NHWC", "mean": [0.1, 0.2, 0.3], "std": [0.5, 0.25, 2.0]}
    repo = runtime_repository(tmp_path / "models", "rgb", write_rgb_copier(tmp_path / "rgb.onnx"), {"adapter": adapter})
    pixels = np.random.default_rng(5).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    grey = png_bytes(np.zeros((4, 6), np.uint8))  # becomes RGB: three equal channels
    summary = run(repo, tmp_path, {"colour.png": png_bytes(pixels), "grey.png": grey})
    assert summary.failed == 0, summary.failures
    with np.load(tmp_path / "out" / "colour.npz") as archive:
        expected = (pixels / 255 - np.array([0.1, 0.2, 0.3])) / np.array([0.5, 0.25, 2.0])
        np.testing.assert_allclose(archive["copy"][0], expected.astype(np.float32), rtol=1e-6)
    with np.load(tmp_path / "out" / "grey.npz") as archive:
        np.testing.assert_allclose(archive["copy"][0, 0, 0], [-0.2, -0.8, -0.15], rtol=1e-6)
    with Image.open(io.BytesIO(png_bytes(pixels))) as image:
        assert image.size == (6, 4)  # width x height: the model's W is 6, its H 4
