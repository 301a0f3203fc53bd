"""The README's Quick start, read as tests/quickstart_debian12.sh reads it. That script runs it for real in a
clean Debian 12 root (minutes, not in CI); these checks keep what it proved from regressing."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def quick_start_commands() -> list[str]:
    section = README.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"^```bash\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)]


def test_the_first_command_is_one_line_that_installs_into_a_virtualenv() -> None:
    """Debian 12's python3 refuses a system-wide pip install (PEP 668) and has no pip of its own."""
    first = quick_start_commands()[0]
    assert "\n" not in first
    steps = [step.strip() for step in first.split("&&")]
    assert steps[:2] == ["python3 -m venv .venv", ". .venv/bin/activate"], steps
    assert steps[2].startswith("pip install ") and steps[-1] == "mlgit serve demo", steps


def test_the_second_command_asks_the_served_model() -> None:
    second = quick_start_commands()[1]
    assert second.startswith("curl ") and "127.0.0.1:8080/v2/models/iris-classifier/infer" in second


def test_it_says_what_needs_kubectl_and_what_happens_without_it() -> None:
    section = README.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    assert "None of this needs kubectl" in section
    for command in ("`manifests build`", "`policy check`", "`deploy`", "`promote`"):
        assert command in section
    assert "error: kubectl not found" in section and "MLGIT_KUBECTL" in section
    assert "tests/quickstart_debian12.sh" in section and (REPO_ROOT / "tests/quickstart_debian12.sh").is_file()
