"""bench/gpu: the split/join that carries the GPU wheel in parts, and run.sh's refusal without a GPU."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PARTS = REPO_ROOT / "bench" / "gpu" / "parts.sh"
RUN = REPO_ROOT / "bench" / "gpu" / "run.sh"


def parts(function: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Call one function of bench/gpu/parts.sh, as prepare.sh and run.sh do."""
    command = f'source "{PARTS}"; {function} "$@"'
    return subprocess.run(
        ["bash", "-c", command, "parts", *map(str, args)], capture_output=True, text=True, check=False, timeout=60
    )


@pytest.fixture
def split(tmp_path: Path) -> tuple[Path, Path]:
    """A 3 MiB + 17 bytes file split into 1 MiB parts: (the original, the parts folder)."""
    original = tmp_path / "big.whl"
    original.write_bytes(os.urandom(3 * 2**20 + 17))
    assert parts("split_file", original, 2**20, tmp_path / "parts").returncode == 0
    return original, tmp_path / "parts"


def test_split_then_join_gives_back_the_same_bytes(split: tuple[Path, Path], tmp_path: Path) -> None:
    original, folder = split
    manifest = (folder / "MANIFEST").read_text().split()
    assert manifest[1:] == ["big.whl", "4"]
    assert sorted(p.stat().st_size for p in folder.glob("big.whl.part*")) == [17, 2**20, 2**20, 2**20]
    result = parts("join_parts", folder / "MANIFEST", folder, tmp_path / "joined")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "joined" / "big.whl").read_bytes() == original.read_bytes()


def test_join_refuses_a_damaged_part_and_names_the_file(split: tuple[Path, Path], tmp_path: Path) -> None:
    _, folder = split
    part = folder / "big.whl.part001"
    data = bytearray(part.read_bytes())
    data[1000] ^= 0xFF
    part.write_bytes(bytes(data))
    result = parts("join_parts", folder / "MANIFEST", folder, tmp_path / "joined")
    assert result.returncode == 2
    assert "big.whl: sha256 differs" in result.stderr


def test_join_names_a_missing_part(split: tuple[Path, Path], tmp_path: Path) -> None:
    _, folder = split
    (folder / "big.whl.part002").unlink()
    result = parts("join_parts", folder / "MANIFEST", folder, tmp_path / "joined")
    assert result.returncode == 2
    assert "big.whl: part" in result.stderr and "part002 is missing" in result.stderr


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has nvidia-smi: a GPU may be here")
def test_run_sh_without_a_gpu_exits_3_before_touching_anything(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(RUN), str(tmp_path / "nothing-carried")], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 3
    assert "no NVIDIA GPU on this machine" in result.stderr
    assert result.stdout == ""
