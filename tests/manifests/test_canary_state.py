"""The canary state in a pin file: both images, the weight and the canary replicas, read and changed in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgit.errors import MlgitError
from mlgit.manifests.canary import CanaryNames, pin_seed
from mlgit.manifests.canary_state import (
    KEEP,
    CanaryState,
    canary_in_text,
    canary_text,
    has_canary,
    read_canary,
    write_canary,
)
from mlgit.manifests.kustomize import kustomize
from mlgit.manifests.pins import pin_path, read_pin, write_pin

REPO = "registry.example.com/ml/linear"
STABLE = f"{REPO}@sha256:" + "1" * 64
CANARY = f"{REPO}@sha256:" + "2" * 64


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = pin_path(tmp_path, "prod")
    path.parent.mkdir(parents=True)
    path.write_text(pin_seed("prod", REPO, CanaryNames.of("linear")), encoding="utf-8")
    return tmp_path


def test_a_seeded_pin_file_runs_no_canary(root: Path) -> None:
    assert has_canary(root, "prod")
    assert read_canary(root, "prod") == CanaryState(stable=None, canary=None, weight=0, replicas=0)


def test_start_shift_and_promote_each_change_only_the_pin_file(root: Path) -> None:
    write_pin(root, "prod", STABLE)
    path = write_canary(root, "prod", canary=CANARY, weight=10, replicas=2)
    assert path == pin_path(root, "prod")
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "deploy/overlays/prod/image/kustomization.yaml"
    ]
    assert read_canary(root, "prod") == CanaryState(STABLE, CANARY, 10, 2)
    write_canary(root, "prod", weight=50)
    assert read_canary(root, "prod") == CanaryState(STABLE, CANARY, 50, 2)
    # Promotion: the canary becomes the stable pin, and no canary runs.
    write_canary(root, "prod", stable=CANARY, weight=0, replicas=0)
    assert read_canary(root, "prod") == CanaryState(CANARY, CANARY, 0, 0)
    # pins.py keeps seeing the stable image only.
    assert read_pin(root, "prod") == CANARY
    text = pin_path(root, "prod").read_text(encoding="utf-8")
    assert text.startswith("# The image the prod environment runs.")
    assert "# The canary Deployment's pods" in text  # comments survive the edits
    assert "canary-weight=0\n" in text and "stable-weight=100\n" in text


def test_keep_and_unpin(root: Path) -> None:
    write_canary(root, "prod", stable=STABLE, canary=CANARY)
    write_canary(root, "prod", stable=KEEP, canary=None)
    assert read_canary(root, "prod") == CanaryState(STABLE, None, 0, 0)
    assert "newTag: unpinned" in pin_path(root, "prod").read_text(encoding="utf-8")


def test_the_weights_reach_the_built_objects(root: Path) -> None:
    """The pin file is a kustomize Component: its images, replicas and split ConfigMap build as such."""
    write_canary(root, "prod", stable=STABLE, canary=CANARY, weight=30, replicas=3)
    overlay = root / "overlay"
    overlay.mkdir()
    (overlay / "deployments.yaml").write_text(
        "".join(
            f"---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n"
            f"    spec:\n      containers:\n        - name: server\n          image: {image}\n"
            for name, image in (("linear", "model"), ("linear-canary", "model-canary"))
        ),
        encoding="utf-8",
    )
    (overlay / "kustomization.yaml").write_text(
        "resources: [deployments.yaml]\ncomponents: [../deploy/overlays/prod/image]\n", encoding="utf-8"
    )
    built = kustomize(overlay).yaml
    assert f"image: {STABLE}" in built and f"image: {CANARY}" in built
    assert "replicas: 3" in built
    assert 'canary-weight: "30"' in built and 'stable-weight: "70"' in built


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"weight": 101}, "weight must be a whole number from 0 to 100"),
        ({"weight": -1}, "weight must be a whole number from 0 to 100"),
        ({"weight": True}, "weight must be a whole number from 0 to 100"),
        ({"replicas": -1}, "replicas must be a whole number >= 0"),
        ({"canary": f"{REPO}:v2"}, "pinned by digest"),
    ],
)
def test_bad_changes_are_refused_and_nothing_is_written(root: Path, changes: dict, message: str) -> None:
    before = pin_path(root, "prod").read_bytes()
    with pytest.raises(MlgitError, match=message):
        write_canary(root, "prod", **changes)
    assert pin_path(root, "prod").read_bytes() == before


@pytest.mark.parametrize(
    ("old", "new", "message", "line"),
    [
        ("canary-weight=0", "canary-weight=ten", "canary-weight must be a whole number from 0 to 100, not 'ten'", 27),
        ("stable-weight=100", "stable-weight=90", "canary-weight 0 and stable-weight 90 do not add up to 100", 28),
        ("    count: 0", "    count: -2", "the canary replicas count must be a whole number >= 0", 20),
        ("      - canary-weight=0\n", "", "expected exactly one literal canary-weight=N", 26),
        ("  - name: model-canary", "  - name: model-next", "no canary state", None),
    ],
)
def test_a_malformed_file_is_named_with_its_line(
    root: Path, old: str, new: str, message: str, line: int | None
) -> None:
    path = pin_path(root, "prod")
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(MlgitError, match=message) as caught:
        read_canary(root, "prod")
    assert caught.value.location is not None and caught.value.location.path == path
    assert caught.value.location.line == line


def test_an_environment_without_canary_says_how_to_turn_it_on(tmp_path: Path) -> None:
    path = pin_path(tmp_path, "dev")
    path.parent.mkdir(parents=True)
    path.write_text(pin_seed("dev", REPO, None), encoding="utf-8")
    assert not has_canary(tmp_path, "dev")
    with pytest.raises(MlgitError, match="the dev environment has no canary state") as caught:
        write_canary(tmp_path, "dev", weight=5)
    assert caught.value.hint and "environments.dev.canary" in caught.value.hint


def test_text_variants_work_on_a_file_as_a_commit_holds_it(root: Path) -> None:
    text = pin_path(root, "prod").read_bytes()
    changed = canary_text(text, "prod", "pin at main", canary=CANARY, weight=20, replicas=1)
    assert canary_in_text(changed, "prod", "pin at main") == CanaryState(None, CANARY, 20, 1)
    assert pin_path(root, "prod").read_bytes() == text  # the working tree is untouched
    broken = changed.replace(b"stable-weight=80", b"stable-weight=70")
    with pytest.raises(MlgitError, match=r"^pin at main, line 28: canary-weight 20 and stable-weight 70"):
        canary_in_text(broken, "prod", "pin at main")


@pytest.mark.parametrize(
    ("canary", "weight", "replicas", "running"),
    [
        (None, 0, 0, False),
        (None, 0, 2, False),  # unpinned: nothing to analyze or promote, whatever the counts say
        (CANARY, 0, 0, False),  # promoted or aborted: the digest stays, nothing runs
        (CANARY, 0, 1, True),  # pods, no traffic yet (or only mirrored traffic)
        (CANARY, 10, 0, True),  # traffic without pods is still a canary (the split policy refuses it)
        (CANARY, 10, 2, True),
    ],
)
def test_running_means_pinned_by_digest_with_pods_or_traffic(
    root: Path, canary: str | None, weight: int, replicas: int, running: bool
) -> None:
    write_canary(root, "prod", stable=STABLE, canary=canary, weight=weight, replicas=replicas)
    assert read_canary(root, "prod").running is running


def test_a_canary_pinned_by_tag_is_an_error_naming_the_line(root: Path) -> None:
    path = pin_path(root, "prod")
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    name_line = lines.index("  - name: model-canary")
    tag_line = next(i for i in range(name_line, len(lines)) if lines[i].strip() == "newTag: unpinned")
    lines[tag_line] = lines[tag_line].replace("unpinned", "v2")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(MlgitError, match="canary image 'model-canary' is pinned by tag 'v2'") as caught:
        read_canary(root, "prod")
    assert caught.value.location is not None and caught.value.location.path == path
    assert caught.value.location.line == tag_line + 1
    assert caught.value.hint and "digest: sha256:" in caught.value.hint


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("canary-weight=0", "canary-weight=150"),
        ("stable-weight=100", "stable-weight=7"),
        ("    count: 0", "    count: -1"),
        ("    newTag: unpinned", "    newTag: v2"),  # the canary's: the stable is pinned below
    ],
)
def test_abort_repairs_what_it_overwrites(root: Path, old: str, new: str) -> None:
    """The emergency path: weight 0 and replicas 0 are written whatever the file held for them."""
    write_canary(root, "prod", stable=STABLE)
    path = pin_path(root, "prod")
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, text
    path.write_text(text.replace(old, new), encoding="utf-8")
    if new.strip() == "newTag: v2":
        write_canary(root, "prod", weight=0, replicas=0)
        with pytest.raises(MlgitError, match="pinned by tag"):  # stopped, but still to be fixed by hand
            read_canary(root, "prod")
        with pytest.raises(MlgitError, match="pinned by tag"):  # a weight on a tag: refused
            write_canary(root, "prod", weight=10)
        return
    write_canary(root, "prod", weight=0, replicas=0)
    assert read_canary(root, "prod") == CanaryState(STABLE, None, 0, 0)


def test_a_change_checks_the_fields_it_keeps(root: Path) -> None:
    path = pin_path(root, "prod")
    path.write_text(path.read_text(encoding="utf-8").replace("    count: 0", "    count: -1"), encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(MlgitError, match="replicas count must be a whole number >= 0"):
        write_canary(root, "prod", weight=5)
    assert path.read_bytes() == before
