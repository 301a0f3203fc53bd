"""Golden files: renderer output compared byte for byte with tests/golden/<case>/ (or with a shipped example).

A mismatch lists every differing, missing and extra file with a unified diff (golden -> produced), so a
reviewer reads the change instead of regenerating blind; `pytest --update-golden` rewrites them.
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

UPDATE = "pytest --update-golden rewrites them; review the diff"


class GoldenFiles:
    def __init__(self, root: Path, update: bool) -> None:
        self.root = root
        self.update = update

    def check(self, case: str | Path, files: dict[str, str]) -> None:
        """Assert that `files` (relative path -> content) is exactly the folder `case`: tests/golden/<case>/,
        or a folder given as a path (a shipped example's generated deploy/ tree)."""
        base = case if isinstance(case, Path) else self.root / case
        if self.update:
            shutil.rmtree(base, ignore_errors=True)
            for rel, content in files.items():
                _write(base / rel, content)
            return
        assert base.is_dir(), f"no golden files at {base}; {UPDATE}"
        on_disk = {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()}
        problems = [f"missing golden file {rel}" for rel in sorted(set(files) - on_disk)]
        problems += [f"golden file {rel} is no longer produced" for rel in sorted(on_disk - set(files))]
        for rel in sorted(set(files) & on_disk):
            problems += _diff(base / rel, files[rel])
        assert not problems, f"{base} differs ({UPDATE}):\n" + "\n".join(problems)

    def check_file(self, path: Path, content: str) -> None:
        """Assert that one file (a shipped example's .gitlab-ci.yml, say) holds exactly `content`."""
        if self.update:
            _write(path, content)
            return
        assert path.is_file(), f"no golden file {path}; {UPDATE}"
        problems = _diff(path, content)
        assert not problems, f"{path} differs ({UPDATE}):\n" + "\n".join(problems)


def _write(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")


def _diff(path: Path, produced: str) -> list[str]:
    expected = path.read_text(encoding="utf-8")
    if produced == expected:
        return []
    lines = difflib.unified_diff(
        expected.splitlines(keepends=True), produced.splitlines(keepends=True), f"{path} (golden)", "produced"
    )
    return ["".join(lines)]
