"""What a promotion changes: which environments, which digest, which branch and pin file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlgit.config.schema import MlgitConfig
from mlgit.errors import MlgitError
from mlgit.manifests.pins import pin_path, read_pin, split_digest_ref

BRANCH_PREFIX = "mlgit/promote-"


@dataclass(frozen=True)
class Plan:
    source: str
    target: str
    image: str  # repo@sha256:...
    image_origin: str  # where the image came from, for the evidence
    from_build: bool  # the image is the one this pipeline built (MLGIT_IMAGE)
    pin_file: str  # relative to the project root

    @property
    def branch(self) -> str:
        return f"{BRANCH_PREFIX}{self.target}"

    @property
    def digest(self) -> str:
        return split_digest_ref(self.image)[1]

    @property
    def title(self) -> str:
        return f"Promote {self.source} to {self.target}: {self.digest[:19]}"


def check_order(config: MlgitConfig, source: str, target: str) -> None:
    """Both environments exist and `target` directly follows `source` in promotion.order."""
    for env in (source, target):
        try:
            config.environment(env)
        except KeyError as exc:
            raise MlgitError(str(exc.args[0]), "name environments as mlgit.yaml declares them") from None
    order = config.promotion.order or []
    for env in (source, target):
        if env not in order:
            raise MlgitError(f"environment {env} is not in promotion.order ({' -> '.join(order)})",
                             "add it to promotion.order in mlgit.yaml to promote through it")  # fmt: skip
    i, j = order.index(source), order.index(target)
    if j == i + 1:
        return
    if j <= i:
        raise MlgitError(f"cannot promote {source} -> {target}: promotion goes {' -> '.join(order)}",
                         "to run an older digest, revert the promotion commit of the target environment")  # fmt: skip
    skipped = ", ".join(order[i + 1 : j])
    raise MlgitError(
        f"cannot promote {source} -> {target}: {skipped} comes in between (promotion.order: {' -> '.join(order)})",
        f"promote {source} -> {order[i + 1]} first",
    )


def plan_promotion(
    config: MlgitConfig, root: Path, source: str, target: str, image: str | None, environ: Mapping[str, str]
) -> Plan:
    """Check the order and find the digest to promote: --image, this pipeline's build, or the source's pin."""
    check_order(config, source, target)
    first = (config.promotion.order or [None])[0] == source
    built = environ.get("MLGIT_IMAGE") if first else None
    pin_file = str(pin_path(Path(), target))
    if image is not None:
        split_digest_ref(image)
        return Plan(source, target, image, "--image", False, pin_file)
    # The first environment deploys what its pipeline built, not its pin: prefer the build's digest.
    if built:
        split_digest_ref(built)
        return Plan(source, target, built, "MLGIT_IMAGE (this pipeline's build)", True, pin_file)
    pinned = read_pin(root, source)
    if pinned is None:
        hint = "run it in the promote job of the pipeline that built the image (MLGIT_IMAGE), or pass --image"
        raise MlgitError(f"environment {source} has no pinned image to promote", hint if first else
                         f"promote into {source} first, or pass --image REPO@sha256:DIGEST")  # fmt: skip
    return Plan(source, target, pinned, f"the pin of {source} in git", False, pin_file)
