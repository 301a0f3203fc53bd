"""Rows per second of the batch runner (`mlgit batch`) against raw onnxruntime over the same files.

    python bench/batch/bench.py [--files N] [--repeat R]        (writes bench/batch/RESULTS.md)

Cases: the iris example over N .npz files of 1-8 rows, and the image-segmentation example (CPU, with
allow_cpu_fallback) over N/10 64x64 FITS cut-outs. For each, in one process, the median of R runs of:
- runner: mlgit_serving.batch over the folder, fresh output folder each time (listing, reading, decoding,
  batching, onnxruntime, writing .npz and masks, all included); its model load is not timed;
- raw per file: a plain onnxruntime session, each file read, decoded (np.load / the same FITS reader) and
  run alone, outputs not written; and the same with np.savez of its outputs (no temporary file, no fsync);
- raw stacked: all rows already in memory in one array, run in slices of max_batch_size: the compute
  ceiling, no file touched.
Plus the wall time of the whole `mlgit batch` command line once (start-up and model load included).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mlgit.config.load import load_project  # noqa: E402
from mlgit.config.yamlio import dump_yaml, read_yaml  # noqa: E402
from mlgit.scaffold import InitOptions, init_repository  # noqa: E402
from mlgit.serve import runtime_repository  # noqa: E402
from mlgit_serving.batch.fits import read_fits_image  # noqa: E402
from mlgit_serving.batch.runner import run_batch  # noqa: E402
from tests.batch.models import fits_bytes  # noqa: E402


def _median(repeat: int, run: Callable[[], float]) -> float:
    return statistics.median(run() for _ in range(repeat))


def _iris_files(folder: Path, count: int) -> int:
    rng = np.random.default_rng(0)
    rows = 0
    for i in range(count):
        array = rng.normal(5, 2, (int(rng.integers(1, 9)), 4)).astype(np.float32)
        np.savez(folder / f"{i:05d}.npz", input=array)
        rows += array.shape[0]
    return rows


def _sky_files(folder: Path, count: int) -> int:
    rng = np.random.default_rng(1)
    for i in range(count):
        (folder / f"{i:05d}.fits").write_bytes(fits_bytes(rng.normal(0, 1, (64, 64)), -32))
    return count


def _session(model: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])


def _raw_per_file(
    session: ort.InferenceSession, folder: Path, read: Callable[[Path], dict[str, np.ndarray]], out: Path | None
) -> float:
    """Each file read and run alone; with `out`, its outputs saved with np.savez (no temporary, no fsync)."""
    names = [o.name for o in session.get_outputs()]
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
    started = time.perf_counter()
    for path in sorted(folder.iterdir()):
        outputs = session.run(names, read(path))
        if out is not None:
            np.savez(out / f"{path.stem}.npz", **dict(zip(names, outputs, strict=True)))
    return time.perf_counter() - started


def _raw_stacked(session: ort.InferenceSession, inputs: dict[str, np.ndarray], max_rows: int) -> float:
    started = time.perf_counter()
    total = next(iter(inputs.values())).shape[0]
    for start in range(0, total, max_rows):
        session.run(None, {k: v[start : start + max_rows] for k, v in inputs.items()})
    return time.perf_counter() - started


Reader = Callable[[Path], dict[str, np.ndarray]]


def _case(name: str, repo: Path, folder: Path, rows: int, read: Reader, repeat: int) -> str:
    project = load_project(repo, warn=False)
    session = _session(repo / project.config.model.path)
    max_rows = project.config.serving.batching.max_batch_size
    out = folder.parent / "out"

    def runner() -> float:
        shutil.rmtree(out, ignore_errors=True)
        with runtime_repository(project) as models:
            summary = run_batch(models, str(folder), str(out), model=project.config.name, report=lambda _: None)
        assert summary.failed == 0 and summary.rows == rows, summary.line()
        return summary.seconds

    every = [read(path) for path in sorted(folder.iterdir())]
    stacked = {k: np.concatenate([inputs[k] for inputs in every]) for k in every[0]}
    timings = {
        "runner": _median(repeat, runner),
        "raw per file": _median(repeat, lambda: _raw_per_file(session, folder, read, None)),
        "raw per file, np.savez of the outputs": _median(repeat, lambda: _raw_per_file(session, folder, read, out)),
        "raw stacked": _median(repeat, lambda: _raw_stacked(session, stacked, max_rows)),
    }
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    cli = subprocess.run(
        [sys.executable, "-m", "mlgit", "batch", str(repo), "--input", str(folder), "--output", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    assert cli.returncode == 0, cli.stderr
    files = len(list(folder.iterdir()))
    timings["`mlgit batch` command, start to exit"] = wall
    lines = [
        f"| {name} | {files} files, {rows} rows | {kind} | {rows / took:,.0f} | {took:.2f} s |"
        for kind, took in timings.items()
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mlgit-bench-batch-") as tmp:
        base = Path(tmp)
        (base / "iris" / "in").mkdir(parents=True)
        iris_rows = _iris_files(base / "iris" / "in", args.files)
        iris = ROOT / "examples" / "iris-classifier"

        def read_npz(path: Path) -> dict[str, np.ndarray]:
            with np.load(path) as archive:
                return {k: archive[k] for k in archive.files}

        rows = [_case("iris (.npz)", iris, base / "iris" / "in", iris_rows, read_npz, args.repeat)]
        seg = init_repository(InitOptions(target=base / "seg-repo", example="image-segmentation"))
        doc = read_yaml(seg / "mlgit.yaml")
        doc["serving"]["allow_cpu_fallback"] = True  # no GPU here: the example's CUDA provider falls back to the CPU
        (seg / "mlgit.yaml").write_text(dump_yaml(doc), encoding="utf-8")
        (base / "seg" / "in").mkdir(parents=True)
        sky_rows = _sky_files(base / "seg" / "in", max(args.files // 10, 1))

        def read_fits(path: Path) -> dict[str, np.ndarray]:
            return {"image": read_fits_image(path.read_bytes()).astype(np.float32)[None, None]}

        rows.append(_case("image-segmentation (FITS, CPU)", seg, base / "seg" / "in", sky_rows, read_fits, args.repeat))
    machine = (
        f"{platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, onnxruntime {ort.__version__}, load average {load:.1f} at the start"
    )
    text = (
        "# Batch runner against raw onnxruntime: `python bench/batch/bench.py`\n\n"
        f"Machine: {machine}.\n{__doc__.split(chr(10), 2)[2].strip()}\n\n"
        "| model | files | what | rows/s | time |\n| --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n"
    )
    (Path(__file__).parent / "RESULTS.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
