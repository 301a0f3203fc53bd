"""Shell completion runs `mlgit` on every TAB: loading the CLI must not import the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("kubernetes", "onnx", "gitlab", "docker", "regopy", "pydantic", "numpy", "jinja2")


def test_loading_the_cli_imports_no_heavy_library() -> None:
    code = f"import sys, mlgit.main; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == [], f"imported at start-up: {loaded}; import them inside the command that needs them"
