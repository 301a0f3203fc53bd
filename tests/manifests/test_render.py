"""The rendered deploy/ tree: golden files, no drift, overlays limited to promotion-friendly fields."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from mlgit import render
from mlgit.config.load import load_project
from mlgit.manifests.render import DEPLOY
from tests.conftest import EXAMPLES, REPO_ROOT
from tests.golden import GoldenFiles
from tests.manifests.cases import CASES

OVERLAY_FIELDS = {"apiVersion", "kind", "namespace", "resources", "components", "replicas", "labels", "patches"}
# A canary environment's overlay also copies its weights and pod instance in (mlgit.manifests.canary), and its
# pin file holds the canary's replicas and weights next to both images (mlgit.manifests.canary_state).
CANARY_OVERLAY_FIELDS = {"replacements"}
PIN_FIELDS = {"apiVersion", "kind", "images"}
CANARY_PIN_FIELDS = {"replicas", "configMapGenerator"}
DEPRECATED = {"commonLabels", "patchesStrategicMerge", "patchesJson6902", "bases", "vars"}


def _deploy_files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted((root / DEPLOY).rglob("*"))
        if p.is_file()
    }


def _yaml(path: Path) -> dict:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES)
def test_rendered_tree_matches_golden(case: str, case_repo: Callable[[str], Path], golden: GoldenFiles) -> None:
    files = _deploy_files(case_repo(case))
    if case in EXAMPLES:  # the shipped example's deploy/ is this case's golden tree: one copy, not two
        prefix = f"{DEPLOY}/"
        golden.check(REPO_ROOT / "examples" / case / DEPLOY, {k.removeprefix(prefix): v for k, v in files.items()})
    else:
        golden.check(f"manifests/{case}/rendered", files)


@pytest.mark.parametrize("case", CASES)
def test_rendered_tree_has_no_drift(case: str, case_repo: Callable[[str], Path]) -> None:
    assert render.drift(load_project(case_repo(case))).clean


@pytest.mark.parametrize("case", CASES)
def test_overlays_hold_only_promotion_friendly_fields(case: str, case_repo: Callable[[str], Path]) -> None:
    root = case_repo(case)
    kustomizations = list((root / DEPLOY).rglob("kustomization.yaml"))
    assert kustomizations
    for path in kustomizations:
        assert not DEPRECATED & set(_yaml(path)), path
    for path in (root / DEPLOY / "overlays").glob("*/kustomization.yaml"):
        env = load_project(root).config.environments.get(path.parent.name)
        canary = env is not None and env.canary is not None
        overlay_extra, pin_extra = (CANARY_OVERLAY_FIELDS, CANARY_PIN_FIELDS) if canary else (set(), set())
        assert set(_yaml(path)) <= OVERLAY_FIELDS | overlay_extra, path
        assert set(_yaml(path.parent / "image" / "kustomization.yaml")) == PIN_FIELDS | pin_extra


def test_components_follow_the_config(case_repo: Callable[[str], Path]) -> None:
    components = {case: sorted(p.name for p in (case_repo(case) / DEPLOY / "components").iterdir()) for case in CASES}
    assert components["linear"] == ["high-availability"]
    assert components["linear-gpu"] == ["gpu", "high-availability", "monitoring"]
    # monitoring is on at the top level, off in dev, and never for review apps (one namespace, one selector).
    alerts = {p.parent.name for p in (case_repo("linear-gpu") / DEPLOY / "overlays").glob("*/alerts.yaml")}
    assert alerts == {"staging", "prod"}
    overlays = sorted(p.name for p in (case_repo("linear-gateway") / DEPLOY / "overlays").iterdir())
    assert overlays == ["dev", "prod", "staging"]  # review.enabled: false


def test_stale_manifests_are_removed(model_repo: Path) -> None:
    stray = model_repo / DEPLOY / "components" / "old" / "kustomization.yaml"
    stray.parent.mkdir(parents=True)
    stray.write_text("kind: Component\n", encoding="utf-8")
    project = load_project(model_repo)
    assert render.drift(project).stale == [stray.relative_to(model_repo).as_posix()]
    render.render(project)
    assert not stray.parent.exists()
    assert render.drift(project).clean
