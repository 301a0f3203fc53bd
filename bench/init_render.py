"""Benchmark: `mlgit init --example NAME` (scaffold + every renderer) and a no-op `mlgit render`.

Measures the CLI as a user runs it (a fresh process each time, imports included) and the
in-process cost, median of N runs. Target (issue 2): init + render under 1.5 s on the 2-core
development machine.

    python bench/init_render.py [--runs 7]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mlgit.config.load import load_project
from mlgit.render import render
from mlgit.scaffold import InitOptions, init_repository, list_examples


def _timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "mlgit", *args], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    print(f"machine: {platform.system()} {platform.release()}, {cpu}, Python {platform.python_version()}")
    print(f"median of {runs} runs, seconds\n")
    print(
        "| example | `mlgit init` (CLI process) | `mlgit render` no-op (CLI process) | init in-process "
        "| render in-process |"
    )
    print("| --- | --- | --- | --- | --- |")
    for example in list_examples():
        cli_init, cli_render, lib_init, lib_render = [], [], [], []
        for i in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                target = Path(tmp) / f"cli{i}"
                cli_init.append(_timed(lambda t=target, e=example: _cli("init", str(t), "--example", e)))
                cli_render.append(_timed(lambda t=target: _cli("render", str(t))))
                other = Path(tmp) / f"lib{i}"
                lib_init.append(_timed(lambda o=other, e=example: init_repository(InitOptions(target=o, example=e))))
                lib_render.append(_timed(lambda o=other: render(load_project(o))))
        cells = [statistics.median(v) for v in (cli_init, cli_render, lib_init, lib_render)]
        print(f"| {example} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
