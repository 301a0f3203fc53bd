"""`mlgit manifests diff` is a manifests command: its code lives in mlgit.manifests.diff, where promotion
takes the diff of its merge request description from too (its CLI tests: tests/promote/test_cli.py)."""

from __future__ import annotations

from tests.test_architecture import import_graph


def test_the_manifest_diff_lives_with_the_manifests() -> None:
    graph = import_graph()
    assert "mlgit.promote.diff" not in graph
    assert "mlgit.manifests.diff" in graph["mlgit.commands.manifests"]
    assert "mlgit.manifests.diff" in graph["mlgit.promote.run"]
    # Above its floor it reaches only git, to read the pin file at the base commit.
    assert {m for m in graph["mlgit.manifests.diff"] if m.startswith("mlgit.promote")} == {
        "mlgit.promote",
        "mlgit.promote.git",
    }
