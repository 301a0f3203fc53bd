"""Which model an environment runs, found in git: the commit its image was built from, and the ONNX file there.

A pin change is committed by a promotion whose `Mlgit-Source-Commit` trailer names the commit the image
was built from; the model file at that commit is what the image serves. A pin changed by hand has no
trailer: then the commit that changed it is the best evidence git holds.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlgit.config.onnx_model import read_onnx
from mlgit.config.serving import Signature, TensorSpec
from mlgit.errors import MlgitError
from mlgit.promote.git import SOURCE_COMMIT_TRAILER, Git

_LFS_POINTER = re.compile(rb"^version https://git-lfs\.github\.com/spec/v1\n(?:.*\n)*?oid sha256:([0-9a-f]{64})\n")


@dataclass(frozen=True)
class ModelFacts:
    commit: str
    sha256: str
    opsets: dict[str, int] | None = None
    signature: Signature | None = None
    note: str | None = None  # why opsets and signature are missing


def source_commit(git: Git, rev: str, pin_file: str) -> str | None:
    """The commit the image pinned in `pin_file` at `rev` was built from (None: the pin was never committed)."""
    changed = git.last_change(rev, pin_file)
    if changed is None:
        return None
    return git.trailer(changed, SOURCE_COMMIT_TRAILER) or changed


def model_at(git: Git, commit: str, model_path: str) -> ModelFacts:
    """sha256, opsets and signature of the ONNX file at `commit`."""
    data = git.show(commit, model_path)
    if data is None:
        return ModelFacts(commit, "unknown", note=f"{model_path} is not in commit {commit[:12]}")
    pointer = _LFS_POINTER.match(data)
    if pointer:
        # The LFS object id is the sha256 of the file; its content is not in the git object store.
        return ModelFacts(commit, pointer.group(1).decode(), note="Git LFS pointer: signature not read")
    with tempfile.TemporaryDirectory(prefix="mlgit-model-") as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(data)
        try:
            model = read_onnx(path)
        except MlgitError as exc:
            return ModelFacts(commit, "unknown", note=f"not readable as ONNX: {exc.message}")
    return ModelFacts(commit, model.sha256, model.opsets, model.signature)


def _spec(tensor: TensorSpec) -> str:
    return f"{tensor.datatype} {tensor.shape}"


def signature_changes(old: Signature, new: Signature) -> list[str]:
    """Every difference between two signatures, exactly (a dynamic dimension becoming fixed included)."""
    changes = []
    for side in ("inputs", "outputs"):
        before = {t.name: t for t in getattr(old, side)}
        after = {t.name: t for t in getattr(new, side)}
        kind = side[:-1]
        changes += [f"{kind} `{n}` removed (was {_spec(before[n])})" for n in before if n not in after]
        changes += [f"{kind} `{n}` added: {_spec(after[n])}" for n in after if n not in before]
        changes += [
            f"{kind} `{n}`: {_spec(before[n])} -> {_spec(after[n])}"
            for n in before
            if n in after and _spec(before[n]) != _spec(after[n])
        ]
    return changes
