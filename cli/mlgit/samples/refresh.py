"""`mlgit sample`: recompute the sample's expected outputs from the current model, and say what changed.

Only the `expected_outputs` member of the JSON file is replaced, in the file's own layout (one line, or
indented): every other byte (the inputs, the user's own keys, key order) stays as the user wrote it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlgit.config.load import Project
from mlgit.files import write_atomic
from mlgit.samples.tensors import FLOAT_TYPES, from_oip, run_sample, to_oip

KEY = "expected_outputs"
_SHOWN = 6  # values shown of an exact (integer, boolean, string) output that changed


@dataclass(frozen=True)
class OutputChange:
    name: str
    changed: bool  # beyond the sample's tolerances (floating point) or at all (other datatypes)
    summary: str


@dataclass(frozen=True)
class Refresh:
    path: Path
    changes: list[OutputChange]
    text: str  # the sample file with the recomputed expected outputs

    @property
    def changed(self) -> bool:
        return any(c.changed for c in self.changes)


def _float_change(name: str, old: np.ndarray, new: np.ndarray, rtol: float, atol: float) -> OutputChange:
    old64, new64 = old.astype(np.float64), new.astype(np.float64)
    diff = np.abs(new64 - old64)
    nonzero = old64 != 0
    rel = float(np.max(diff[nonzero] / np.abs(old64[nonzero]))) if nonzero.any() else 0.0
    summary = f"max abs diff {float(diff.max()) if diff.size else 0.0:.3g}, max rel diff {rel:.3g}"
    changed = not np.allclose(new64, old64, rtol=rtol, atol=atol)
    return OutputChange(name, changed, summary + (f" (beyond rtol {rtol}, atol {atol})" if changed else ""))


def _exact_change(name: str, old: np.ndarray, new: np.ndarray) -> OutputChange:
    differs = old.reshape(-1) != new.reshape(-1)
    count = int(np.count_nonzero(differs))
    if not count:
        return OutputChange(name, False, "unchanged")
    before, after = old.reshape(-1).tolist(), new.reshape(-1).tolist()
    more = " ..." if differs.size > _SHOWN else ""
    return OutputChange(
        name, True, f"{count} of {differs.size} values differ: {before[:_SHOWN]} -> {after[:_SHOWN]}{more}"
    )


def describe_change(old: dict[str, Any] | None, new: dict[str, Any], rtol: float, atol: float) -> OutputChange:
    """How the OIP tensor `new` differs from `old` (None: the sample had no expected value for it)."""
    name = new["name"]
    if old is None:
        return OutputChange(name, True, f"new: {new['datatype']} {new['shape']}")
    if old["datatype"] != new["datatype"] or old["shape"] != new["shape"]:
        return OutputChange(name, True, f"{old['datatype']} {old['shape']} -> {new['datatype']} {new['shape']}")
    before, after = from_oip(old), from_oip(new)
    if new["datatype"] in FLOAT_TYPES:
        return _float_change(name, before, after, rtol, atol)
    return _exact_change(name, before, after)


def _members(text: str) -> dict[str, tuple[int, int, int]]:
    """Top-level members of the JSON object in `text`: key -> (key start, value start, value end)."""
    decoder, members = json.JSONDecoder(), {}
    space = re.compile(r"\s*")
    index = space.match(text, text.index("{") + 1).end()
    while text[index] != "}":
        start = index
        key, index = decoder.raw_decode(text, index)
        index = space.match(text, index).end() + 1  # past ':'
        value_start = space.match(text, index).end()
        _, index = decoder.raw_decode(text, value_start)
        members[key] = (start, value_start, index)  # a repeated key: the last one counts, as in json.loads
        index = space.match(text, index).end()
        if text[index] == ",":
            index = space.match(text, index + 1).end()
    return members


def _indent(text: str, position: int) -> str:
    """The leading white space of the line holding `position`."""
    line = text[text.rfind("\n", 0, position) + 1 : position]
    return line[: len(line) - len(line.lstrip(" \t"))]


def _dump(value: Any, text: str, start: int, multiline: bool) -> str:
    """`value` as JSON laid out like the file: on one line, or indented from the line holding `start`."""
    if not multiline:
        return json.dumps(value)
    indent = _indent(text, start)
    step = re.search(r"\n([ \t]+)\S", text)
    unit = len(step.group(1)) if step else 2
    return json.dumps(value, indent=unit).replace("\n", "\n" + indent)


def splice_expected(text: str, expected: list[dict[str, Any]]) -> str:
    """`text` (a sample JSON object) with its expected outputs replaced by `expected`, or added after its inputs."""
    members = _members(text)
    if KEY in members:
        key_start, start, end = members[KEY]
        return text[:start] + _dump(expected, text, key_start, "\n" in text[start:end]) + text[end:]
    key_start, _, end = members["inputs"]
    multiline = "\n" in text[text.index("{") : key_start]
    # The new member goes on a line of its own, indented as the inputs key is, when the object spans lines.
    head = ",\n" + _indent(text, key_start) if multiline else ", "
    return text[:end] + f"{head}{json.dumps(KEY)}: {_dump(expected, text, key_start, multiline)}" + text[end:]


def plan_refresh(project: Project) -> Refresh:
    """The sample with expected outputs recomputed by the current model (onnxruntime, CPU), and what changed.

    The outputs the sample lists are recomputed (all of the model's when it lists none).
    """
    cfg = project.config.model.sample
    path = project.root / cfg.path
    outputs = run_sample(project)
    old = {t["name"]: t for t in project.sample.get(KEY, [])}
    names = list(old) or list(outputs)
    datatypes = {t.name: t.datatype for t in project.model.signature.outputs}
    expected = [to_oip(name, datatypes[name], outputs[name]) for name in names]
    changes = [describe_change(old.get(t["name"]), t, cfg.rtol, cfg.atol) for t in expected]
    return Refresh(path, changes, splice_expected(path.read_text(encoding="utf-8"), expected))


def write_refresh(refresh: Refresh) -> None:
    write_atomic(refresh.path, refresh.text)
