"""A hung test fails with its stack after a time limit instead of hanging the whole run (pytest-timeout)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.fixtures_integration import INTEGRATION_TIMEOUT


def test_the_suite_has_a_default_timeout(request: pytest.FixtureRequest) -> None:
    assert request.config.pluginmanager.hasplugin("timeout"), "pytest-timeout is not installed: pip install '.[test]'"
    assert float(request.config.getini("timeout")) == 120


def test_a_hanging_test_fails_instead_of_hanging_the_run(tmp_path: Path) -> None:
    (tmp_path / "test_hang.py").write_text("import time\n\n\ndef test_hang():\n    time.sleep(600)\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "test_hang.py", "-c", str(REPO_ROOT / "pyproject.toml"),
         "--rootdir", str(tmp_path), "-o", "timeout=2", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    assert "test_hang - Failed: Timeout (>2.0s) from pytest-timeout" in result.stdout, result.stdout


def test_integration_tests_get_the_longer_limit(tmp_path: Path) -> None:
    """Their session fixtures build images: the first test to use one pays for the build."""
    (tmp_path / "test_limits.py").write_text(
        "import pytest\n\n\n"
        "@pytest.mark.integration\ndef test_integration(request):\n"
        "    print('LIMIT', request.node.get_closest_marker('timeout').args[0])\n\n\n"
        "@pytest.mark.integration\n@pytest.mark.timeout(5000)\ndef test_own_limit(request):\n"
        "    print('LIMIT', request.node.get_closest_marker('timeout').args[0])\n\n\n"
        "def test_unit(request):\n    print('LIMIT', request.node.get_closest_marker('timeout'))\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path / "test_limits.py"), "-p", "tests.fixtures_integration",
         "-c", str(REPO_ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), "-s", "-q", "-p", "no:cacheprovider"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    limits = re.findall(r"LIMIT (\S+)", result.stdout)
    assert limits == [str(INTEGRATION_TIMEOUT), "5000", "None"]  # the unit test runs under the ini's 120 s
