"""Regenerate model/reference.npz, the reference inputs that input drift is measured against.

Run from the example folder: python training/reference.py (numpy only). 300 rows like the Iris data: 100 per
species, normal around that species' mean and spread of each measurement (Fisher's data), clipped to the
measured ranges and rounded to the millimetre as the data is. A real model's reference is a sample of its
training or validation inputs; `monitoring.drift.reference` in mlgit.yaml names the file.
"""

from pathlib import Path

import numpy as np

EXAMPLE_DIR = Path(__file__).resolve().parent.parent
# Per species: mean and standard deviation of sepal length, sepal width, petal length, petal width (cm).
MEANS = [[5.006, 3.428, 1.462, 0.246], [5.936, 2.770, 4.260, 1.326], [6.588, 2.974, 5.552, 2.026]]
STDS = [[0.352, 0.379, 0.174, 0.105], [0.516, 0.314, 0.470, 0.198], [0.636, 0.322, 0.552, 0.275]]
LOW, HIGH = [4.3, 2.0, 1.0, 0.1], [7.9, 4.4, 6.9, 2.5]


def main() -> None:
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.normal(m, s, size=(100, 4)) for m, s in zip(MEANS, STDS, strict=True)])
    rows = np.round(np.clip(rows, LOW, HIGH), 1).astype(np.float32)
    np.savez_compressed(EXAMPLE_DIR / "model" / "reference.npz", input=rows)


if __name__ == "__main__":
    main()
