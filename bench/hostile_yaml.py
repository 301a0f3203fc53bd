"""Benchmark: how fast `mlgit validate` refuses a hostile mlgit.yaml (issue 14, item 11).

Before the bounds, a 1.7 KB file of nested aliases ran for 116 s and 5.8 GB and ended in a MemoryError,
5000 nested flow lists in a RecursionError, and a 60 MB file for minutes. Each case is written into a
fresh model repository (`mlgit init`); the table gives the exit code, the wall time of a fresh
`mlgit validate` process (what a user waits for, interpreter start included), its peak memory, and the
refusal alone in-process (`parse_config`), median of N runs.

    python bench/hostile_yaml.py [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mlgit.config.load import CONFIG_FILE, parse_config
from mlgit.config.yamlio import MAX_YAML_BYTES
from mlgit.errors import MlgitError
from mlgit.scaffold import InitOptions, init_repository


def alias_bomb() -> str:
    """The issue's shape: 9 levels of lists naming the previous level 9 times (9**9 strings expanded)."""
    lines = ["a0: &a0 [" + ", ".join(["lolololol"] * 9) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "exposure:\n  annotations:\n" + "".join(f"    {line}\n" for line in lines)


def dense_keys() -> str:
    """The slowest file accepted: the size cap filled with flow mappings (ruamel parses 20-50 KiB/s of this)."""
    text, i = "", 0
    while True:
        line = f"k{i}: {{a: [1, 2, 3], b: 'v{i}'}}\n"
        if len(text) + len(line) > MAX_YAML_BYTES - 2048:  # room for the scaffolded mlgit.yaml
            return text
        text, i = text + line, i + 1


CASES: list[tuple[str, Callable[[], str]]] = [
    ("valid mlgit.yaml (baseline)", lambda: ""),
    ("nested aliases", alias_bomb),
    ("5000 nested flow lists", lambda: "exposure:\n  annotations: " + "[" * 5000 + "]" * 5000 + "\n"),
    ("60 MB file", lambda: ("# " + "x" * 98 + "\n") * 600_000),
    ("dense keys up to the size cap (slowest accepted)", dense_keys),
]


# `python -m mlgit`, printing the process's own peak memory (VmHWM) last on stderr: rusage's maxrss of a
# child would also count this benchmark's memory, shared with the child until it starts the new program.
_CLI_WITH_PEAK = """
import atexit, sys
from mlgit.main import run
atexit.register(lambda: print(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")), file=sys.stderr))
sys.argv[0] = "mlgit"
run()
"""


def _timed_cli(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mlgit", *args], capture_output=True, check=True)
    return time.perf_counter() - start


def _cli_validate(repo: Path) -> tuple[int, float, int]:
    """Exit code, wall seconds and peak memory (MiB) of a fresh `mlgit validate` process."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CLI_WITH_PEAK, "validate", str(repo)], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    peak_kib = int(proc.stderr.strip().splitlines()[-1].split()[1])
    return proc.returncode, seconds, peak_kib // 1024


def _in_process(config: Path) -> float:
    start = time.perf_counter()
    with contextlib.suppress(MlgitError):
        parse_config(config)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    print(f"machine: {platform.system()} {platform.release()}, {cpu}, Python {platform.python_version()}")
    print(f"median of {runs} runs\n")
    start_up = statistics.median(_timed_cli(["--version"]) for _ in range(runs))
    print(f"start-up alone (`mlgit --version`, a fresh process): {start_up:.2f} s\n")
    print("| mlgit.yaml | size | exit | `mlgit validate` (CLI process) | peak memory | refusal in-process |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        base = init_repository(InitOptions(target=Path(tmp) / "base", example="iris-classifier"))
        original = (base / CONFIG_FILE).read_text(encoding="utf-8")
        for label, extra in CASES:
            (base / CONFIG_FILE).write_text(original + extra(), encoding="utf-8")
            size = (base / CONFIG_FILE).stat().st_size
            cli = [_cli_validate(base) for _ in range(runs)]
            lib = [_in_process(base / CONFIG_FILE) for _ in range(runs)]
            codes = sorted({c for c, _, _ in cli})
            print(
                f"| {label} | {size / 1024:,.1f} KiB | {', '.join(map(str, codes))} "
                f"| {statistics.median(s for _, s, _ in cli):.2f} s | {max(m for _, _, m in cli)} MiB "
                f"| {statistics.median(lib) * 1000:.1f} ms |"
            )


if __name__ == "__main__":
    main()
