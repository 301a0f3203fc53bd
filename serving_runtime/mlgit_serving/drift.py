"""Input drift: the last `window` rows of each input against its reference profile, as PSI per feature.

The profile (model-settings.json `drift`, rendered by `mlgit render` from the repository's reference data)
gives per feature the inner bin edges and the reference's share of rows in each bin. On the hot path a request's
rows are only queued (a list append): a dozen numpy calls per request would cost a fifth of a small model's
request time. Queued rows are binned together, one vectorised comparison per input, once FLUSH_ROWS rows or
FLUSH_BYTES bytes wait, and at every scrape; a ring buffer keeps each row's bin indices, so the row leaving the
window is subtracted as the new one is added. Scores are computed when Prometheus scrapes, by a collector:

    PSI = sum over bins of (p - q) * ln(p / q)

where q is the reference's share of a bin and p the window's, both floored at EPSILON so that an empty bin
counts as rare rather than infinitely surprising. Rule of thumb: < 0.1 no change, 0.1-0.2 some, > 0.2 drift.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import numpy as np
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .model_settings import DriftSettings, InputProfile

EPSILON = 1e-4
# Bin queued rows once this many wait: enough to spread numpy's per-call overhead thin, and a bound on the
# memory the queue holds on to (the decoded request arrays).
FLUSH_ROWS = 256
FLUSH_BYTES = 4 * 1024 * 1024
logger = logging.getLogger(__name__)


def row_features(values: np.ndarray, summary: bool) -> np.ndarray:
    """(rows, features) float64: each element of a row (flat, C order), or the row's mean and std."""
    rows = np.asarray(values).reshape(len(values), -1).astype(np.float64, copy=False)
    if summary:
        return np.stack([rows.mean(axis=1), rows.std(axis=1)], axis=1)
    return rows


def psi(window_share: np.ndarray, reference_share: np.ndarray) -> np.ndarray:
    """PSI over the last axis (bins) of two arrays of shares, each floored at EPSILON."""
    p = np.maximum(window_share, EPSILON)
    q = np.maximum(reference_share, EPSILON)
    return np.sum((p - q) * np.log(p / q), axis=-1)


class InputWindow:
    """The bin counts of the last `size` rows of one input."""

    def __init__(self, profile: InputProfile, size: int) -> None:
        self.name = profile.name
        self.summary = profile.summary
        self.features = [f.feature for f in profile.features]
        nbins = max(len(f.proportions) for f in profile.features)
        n_features = len(self.features)
        # Features with fewer bins get +inf edges: no value reaches the bins they do not have.
        self._edges = np.full((n_features, nbins - 1), np.inf)
        self._reference = np.zeros((n_features, nbins))
        for i, f in enumerate(profile.features):
            self._edges[i, : len(f.edges)] = f.edges
            self._reference[i, : len(f.proportions)] = f.proportions
        self._nbins = nbins
        # Flat index of (feature, bin) in counts: feature * nbins + bin, so one bincount updates all features.
        self._offsets = np.arange(n_features) * nbins
        self._ring = np.zeros((size, n_features), dtype=np.int64)
        self._size = size
        self._head = 0  # the next slot to write
        self.rows = 0  # rows in the window (<= size)
        self._counts = np.zeros(n_features * nbins, dtype=np.int64)
        self._queued: list[np.ndarray] = []
        self._queued_rows = self._queued_bytes = 0
        self._lock = threading.Lock()  # requests queue on the event loop; a scrape may flush from another thread

    def offer(self, values: np.ndarray) -> None:
        """Queue a request's rows; bin the queue once it is long or large enough."""
        if self.summary:  # rows may differ in size from request to request: queue their (mean, std)
            values = row_features(values, True)
        with self._lock:
            self._queued.append(values)
            self._queued_rows += len(values)
            self._queued_bytes += values.nbytes
            if self._queued_rows < FLUSH_ROWS and self._queued_bytes < FLUSH_BYTES:
                return
        self.flush()

    def flush(self) -> None:
        """Bin every queued row, in arrival order."""
        with self._lock:
            queued, self._queued = self._queued, []
            self._queued_rows = self._queued_bytes = 0
            if not queued:
                return
            try:
                self.add(queued[0] if len(queued) == 1 else np.concatenate(queued), summarised=self.summary)
            except ValueError as exc:  # a hand-written profile that does not fit the model: requests still served
                logger.warning("drift not tracked", extra={"input": self.name, "error": str(exc)})

    def bins(self, features: np.ndarray) -> np.ndarray:
        """(rows, features) flat (feature, bin) indices: a value's bin is the number of edges <= it."""
        if features.shape[1] != len(self.features):
            raise ValueError(
                f"input {self.name!r}: {features.shape[1]} features per row, the profile {len(self.features)}"
            )
        # The CLI profile's rule (numpy.searchsorted side='right'), for every row and feature at once: one
        # comparison per edge (a (rows, features, edges) array summed over its short last axis is ten times slower).
        bins = np.broadcast_to(self._offsets, features.shape).copy()
        for k in range(self._edges.shape[1]):
            bins += features >= self._edges[:, k]
        return bins

    def add(self, values: np.ndarray, summarised: bool = False) -> None:
        """Bin rows now (`summarised`: they are already row_features)."""
        if len(values) == 0:
            return
        features = values if summarised else row_features(values, self.summary)
        new = self.bins(features)[-self._size :]  # more rows than the window holds: only the last count
        n = len(new)
        positions = self._head + np.arange(n)
        slots = positions % self._size
        # Full: every slot written holds the oldest row, which leaves. Not yet full: head == rows, and only the
        # slots past the end (wrapping to 0) hold rows.
        old = self._ring[slots if self.rows == self._size else slots[positions >= self._size]]
        minlength = len(self._counts)
        self._counts -= np.bincount(old.ravel(), minlength=minlength)
        self._ring[slots] = new
        self._counts += np.bincount(new.ravel(), minlength=minlength)
        self._head = int((self._head + n) % self._size)
        self.rows = min(self.rows + n, self._size)

    @property
    def counts(self) -> np.ndarray:
        """(features, bins): how many rows now in the window fall in each bin (queued rows not yet)."""
        return self._counts.reshape(len(self.features), self._nbins)

    def scores(self) -> np.ndarray:
        """PSI per feature over the rows now in the window (call only when rows > 0)."""
        return psi(self.counts / self.rows, self._reference)


class DriftMonitor:
    """One model version's drift windows, fed once per request with its decoded inputs."""

    def __init__(self, settings: DriftSettings, model: str, version: str) -> None:
        self.model, self.version = model, version
        self.threshold = settings.threshold
        self.windows = [InputWindow(profile, settings.window) for profile in settings.inputs]

    def observe(self, inputs: dict[str, np.ndarray]) -> None:
        for window in self.windows:
            values = inputs.get(window.name)
            if values is not None and values.ndim > 0:
                window.offer(values)


class DriftCollector(Collector):
    """`mlgit_input_drift_score{model,version,input,feature}`, computed at scrape time for every monitor."""

    def __init__(self) -> None:
        self._monitors: list[DriftMonitor] = []

    def add(self, monitor: DriftMonitor) -> None:
        self._monitors.append(monitor)

    def remove_version(self, model: str, version: str) -> None:
        self._monitors = [m for m in self._monitors if (m.model, m.version) != (model, version)]

    def describe(self) -> list[GaugeMetricFamily]:
        return [self._family()]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        for monitor in list(self._monitors):
            for window in monitor.windows:
                window.flush()
                if window.rows == 0:
                    continue  # no rows yet: no score rather than a made-up one
                for feature, score in zip(window.features, window.scores().tolist(), strict=True):
                    family.add_metric([monitor.model, monitor.version, window.name, feature], score)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "mlgit_input_drift_score",
            "PSI of each input feature's last rows against the reference profile (> 0.2: drift).",
            labels=["model", "version", "input", "feature"],
        )
