"""Golden files: renderer output compared byte for byte with tests/golden/<case>/."""

from __future__ import annotations

import shutil
from pathlib import Path


class GoldenFiles:
    def __init__(self, root: Path, update: bool) -> None:
        self.root = root
        self.update = update

    def check(self, case: str, files: dict[str, str]) -> None:
        """Assert that `files` (relative path -> content) is exactly tests/golden/<case>/."""
        base = self.root / case
        if self.update:
            shutil.rmtree(base, ignore_errors=True)
            for rel, content in files.items():
                (base / rel).parent.mkdir(parents=True, exist_ok=True)
                (base / rel).write_text(content, encoding="utf-8")
            return
        assert base.is_dir(), f"no golden files for {case}; run pytest --update-golden and review the diff"
        on_disk = {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()}
        assert sorted(files) == sorted(on_disk), f"{case}: file sets differ (pytest --update-golden rewrites)"
        for rel, content in files.items():
            expected = (base / rel).read_text(encoding="utf-8")
            assert content == expected, f"{case}/{rel} differs from its golden file (pytest --update-golden)"
