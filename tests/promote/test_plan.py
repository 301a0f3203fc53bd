"""Which environments may be promoted into which, and which digest is promoted."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgit.config.load import load_project
from mlgit.errors import MlgitError
from mlgit.manifests.pins import pin_in_text, pinned_text, write_pin
from mlgit.promote.plan import check_order, plan_promotion
from tests.promote.support import IMAGE_A, IMAGE_B


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        ("dev", "prod", "staging comes in between"),
        ("prod", "staging", "promotion goes dev -> staging -> prod"),
        ("staging", "staging", "promotion goes"),
        ("dev", "qa", "unknown environment 'qa'"),
        ("review", "dev", "unknown environment 'review'"),
    ],
)
def test_order_violations_are_refused(model_repo: Path, source: str, target: str, message: str) -> None:
    with pytest.raises(MlgitError, match=message):
        check_order(load_project(model_repo).config, source, target)


def test_environments_outside_the_order_cannot_be_promoted(model_repo: Path) -> None:
    config = load_project(model_repo).config
    config.promotion.order = ["dev", "prod"]
    check_order(config, "dev", "prod")
    with pytest.raises(MlgitError, match=r"staging is not in promotion\.order"):
        check_order(config, "dev", "staging")


def test_image_precedence(model_repo: Path) -> None:
    project = load_project(model_repo)
    config, root = project.config, project.root
    write_pin(root, "dev", IMAGE_B)
    write_pin(root, "staging", IMAGE_B)
    built = {"MLGIT_IMAGE": IMAGE_A}
    assert plan_promotion(config, root, "dev", "staging", IMAGE_A, {}).image_origin == "--image"
    # dev deploys what its pipeline built, so the build beats dev's (stale) pin...
    plan = plan_promotion(config, root, "dev", "staging", None, built)
    assert (plan.image, plan.from_build) == (IMAGE_A, True)
    assert plan_promotion(config, root, "dev", "staging", None, {}).image == IMAGE_B
    # ... but only for the first environment: staging runs its pin whatever MLGIT_IMAGE says.
    plan = plan_promotion(config, root, "staging", "prod", None, built)
    assert (plan.image, plan.from_build, plan.pin_file) == (
        IMAGE_B,
        False,
        "deploy/overlays/prod/image/kustomization.yaml",
    )
    assert plan.branch == "mlgit/promote-prod"
    assert plan.title == "Promote staging to prod: sha256:bbbbbbbbbbbb"


def test_nothing_to_promote_from_an_unpinned_source(model_repo: Path) -> None:
    project = load_project(model_repo)
    with pytest.raises(MlgitError, match="dev has no pinned image") as caught:
        plan_promotion(project.config, project.root, "dev", "staging", None, {})
    assert "MLGIT_IMAGE" in (caught.value.hint or "")
    with pytest.raises(MlgitError, match="staging has no pinned image"):
        plan_promotion(project.config, project.root, "staging", "prod", None, {})


def test_images_must_be_pinned_by_digest(model_repo: Path) -> None:
    project = load_project(model_repo)
    with pytest.raises(MlgitError, match="not an image reference pinned by digest"):
        plan_promotion(project.config, project.root, "dev", "staging", "registry.example.com/ml/linear:1.0", {})
    with pytest.raises(MlgitError, match="not an image reference pinned by digest"):
        plan_promotion(project.config, project.root, "dev", "staging", None, {"MLGIT_IMAGE": "x:latest"})


def test_pin_text_round_trip_keeps_comments(model_repo: Path) -> None:
    text = (model_repo / "deploy/overlays/staging/image/kustomization.yaml").read_bytes()
    assert pin_in_text(text, "staging", "pin") is None
    pinned = pinned_text(text, "staging", IMAGE_A, "pin")
    assert pin_in_text(pinned, "staging", "pin") == IMAGE_A
    assert pinned.startswith(b"# The image the staging environment runs.")
