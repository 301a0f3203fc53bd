"""The drift reference profile rendered into model-settings.json: bins and reference shares per input feature.

`monitoring.drift.reference` is a .npz in the repository with one array per input, named as in the signature,
rows along the first axis. Each feature is the row's element at a flat index (C order); a row of more than
MAX_FEATURES elements, or of no fixed size, is profiled by two summary features instead, its mean and std.
Per feature: `bins` bins with inner edges at the reference's quantiles, and the share of reference rows in
each. A value's bin is the number of edges <= it (numpy.searchsorted side='right'), the runtime's rule too
(serving_runtime/mlgit_serving/drift.py). BYTES inputs are not profiled.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from mlgit.config.load import Project
from mlgit.errors import Location, MlgitError
from mlgit.model_settings import DriftSettings, FeatureProfile, InputProfile, TensorSpec

MAX_FEATURES = 64
_HINT = "write one array per model input, named as in the signature, rows along the first axis (docs/monitoring.md)"


def drift_off_reason(project: Project) -> str | None:
    """Why drift is not monitored (for `mlgit validate`), or None when it is."""
    drift = project.config.monitoring.drift
    if not (project.root / drift.reference).is_file():
        return (
            f"monitoring.drift.reference: {drift.reference} not found, so input drift is not monitored; "
            f"add it to turn drift scores on ({_HINT})"
        )
    if not any(spec.datatype != "BYTES" for spec in project.model.signature.inputs):
        return "monitoring.drift.reference: every input is BYTES, so input drift is not monitored"
    return None


def drift_settings(project: Project) -> DriftSettings | None:
    """The profile of each numeric input against the reference file; None when drift is off (the reference
    file is absent and was not named in mlgit.yaml)."""
    drift = project.config.monitoring.drift
    path = project.root / drift.reference
    if not path.is_file():
        if "reference" in drift.model_fields_set:
            raise MlgitError(f"monitoring.drift.reference: {drift.reference} not found", _HINT)
        return None
    arrays = _read(path)
    specs = [spec for spec in project.model.signature.inputs if spec.datatype != "BYTES"]
    if not specs:
        return None
    profiles = [profile_input(spec, _array_of(path, arrays, spec, drift.bins), drift.bins) for spec in specs]
    unknown = sorted(set(arrays) - {spec.name for spec in project.model.signature.inputs})
    if unknown:  # most likely a misspelt input name: say so rather than ignore the array
        raise MlgitError(f"{path}: arrays {unknown} are not inputs of the model", _HINT, location=Location(path))
    return DriftSettings(window=drift.window, threshold=drift.threshold, inputs=profiles)


def _read(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise MlgitError(f"{path}: not a readable .npz ({exc})", _HINT, location=Location(path)) from None


def _array_of(path: Path, arrays: dict[str, np.ndarray], spec: TensorSpec, bins: int) -> np.ndarray:
    where = Location(path)
    if spec.name not in arrays:
        raise MlgitError(f"{path}: no array for input {spec.name!r} (it has {sorted(arrays)})", _HINT, location=where)
    values = arrays[spec.name]
    if values.dtype.kind not in "biuf":
        raise MlgitError(f"{path}: input {spec.name!r} is {values.dtype}, not numbers", _HINT, location=where)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        # A NaN edge puts every live value into the first bin (comparisons with NaN are false): the score
        # would stay at zero whatever the inputs.
        row = int(np.argwhere(~np.isfinite(values))[0][0])
        raise MlgitError(
            f"{path}: input {spec.name!r} has NaN or infinite values (the first in row {row}); a reference must "
            "hold finite numbers",
            _HINT,
            location=where,
        )
    if spec.shape is not None:
        expected = spec.shape[1:]
        fits = values.ndim == len(spec.shape) and all(
            d in (-1, n) for d, n in zip(expected, values.shape[1:], strict=False)
        )
        if not fits:
            raise MlgitError(
                f"{path}: input {spec.name!r} has shape {list(values.shape)}; the signature says {spec.shape} "
                "(rows along the first axis)",
                _HINT,
                location=where,
            )
    if values.ndim == 0 or len(values) < bins:
        raise MlgitError(
            f"{path}: input {spec.name!r} has {len(values) if values.ndim else 0} rows; "
            f"monitoring.drift.bins is {bins}, so it needs at least that many",
            _HINT,
            location=where,
        )
    return values


def is_summarised(spec: TensorSpec) -> bool:
    """Profile the row's mean and std rather than each element: too many elements, or no fixed number."""
    row = spec.shape[1:] if spec.shape is not None else None
    return row is None or any(d == -1 for d in row) or math.prod(row) > MAX_FEATURES


def profile_input(spec: TensorSpec, values: np.ndarray, bins: int) -> InputProfile:
    summary = is_summarised(spec)
    rows = values.reshape(len(values), -1).astype(np.float64)
    if summary:
        features, names = np.stack([rows.mean(axis=1), rows.std(axis=1)], axis=1), ["mean", "std"]
    else:
        features, names = rows, [str(i) for i in range(rows.shape[1])]
    quantiles = np.quantile(features, np.arange(1, bins) / bins, axis=0)  # (bins - 1, features)
    profiles = []
    for i, name in enumerate(names):
        # 6 significant digits keep the file readable; the shares are counted with the edges as written.
        edges = [float(f"{e:.6g}") for e in quantiles[:, i]]
        counts = np.bincount(np.searchsorted(edges, features[:, i], side="right"), minlength=bins)
        shares = [round(float(c) / len(features), 6) for c in counts]
        profiles.append(FeatureProfile(feature=name, edges=edges, proportions=shares))
    return InputProfile(name=spec.name, summary=summary, features=profiles)
