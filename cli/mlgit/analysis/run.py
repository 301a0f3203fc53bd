"""`mlgit analyze` as a plain function: the thresholds of the environment, the numbers of both tracks, the verdict."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mlgit.analysis.measure import TRACKS, check_window, measure_track
from mlgit.analysis.prometheus import Prometheus
from mlgit.analysis.verdict import Thresholds, Verdict, judge
from mlgit.config.canary import canary_of
from mlgit.config.load import Project
from mlgit.drift_profile import drift_off_reason
from mlgit.errors import MlgitError
from mlgit.files import write_atomic
from mlgit.manifests.canary_state import CanaryState, read_canary
from mlgit.targets import target


def thresholds_of(project: Project, env: str, window: str | None) -> Thresholds:
    """environments.<env>.canary.analysis; `window` (--window) overrides its window."""
    analysis = canary_of(project.config, env).analysis
    where = "--window" if window else f"environments.{env}.canary.analysis.window"
    off = drift_off_reason(project)
    if analysis.max_drift is not None and off is not None:
        raise MlgitError(f"environments.{env}.canary.analysis.max_drift is set but input drift is not monitored", off)
    return Thresholds(
        window=check_window(window or analysis.window, where),
        min_requests=analysis.min_requests,
        max_error_rate=analysis.max_error_rate,
        max_p99_ratio=analysis.max_p99_ratio,
        max_p50_ratio=analysis.max_p50_ratio,
        max_drift=analysis.max_drift,
    )


def prometheus_url(project: Project, env: str, flag: str | None) -> str:
    url = flag or project.config.monitoring_of(env).prometheus_url
    if not url:
        raise MlgitError("no Prometheus to ask: pass --prometheus URL or set monitoring.prometheus_url in mlgit.yaml",
                         "the URL of a Prometheus that scrapes the environment, e.g. "
                         "http://prometheus-operated.monitoring:9090")  # fmt: skip
    return url


def idle_reason(project: Project, env: str) -> str | None:
    """Why there is no canary to judge in `env` as its pin file stands (None: one runs). After a promotion or
    an abort the deploy job's analysis has nothing to do."""
    canary_of(project.config, env)
    state = read_canary(project.root, env)
    if not state.running:
        return f"{env} runs no canary (weight {state.weight}%, {state.replicas} canary replicas): nothing to analyze"
    return None


def analyze(project: Project, env: str, url: str, window: str | None = None, at: float | None = None) -> Verdict:
    """Measure canary and stable of `env` at `at` (default: now) and judge the canary."""
    thresholds = thresholds_of(project, env, window)
    state = read_canary(project.root, env)
    images = {"stable": state.stable, "canary": state.canary}
    namespace = target(project.config, env, overlay=True).namespace
    model = project.config.name
    drift = thresholds.max_drift is not None
    when = time.time() if at is None else at
    prometheus = Prometheus(url)
    try:
        stable, canary = (
            measure_track(prometheus, when, namespace, model, track, thresholds.window, drift) for track in TRACKS
        )
    finally:
        prometheus.close()
    outcome, checks, reasons = judge(thresholds, stable, canary)
    return Verdict(outcome, reasons, env, namespace, model, prometheus.url, when, images, thresholds, stable, canary,
                   checks)  # fmt: skip


def write_verdict(path: Path, verdict: Verdict) -> None:
    try:
        # allow_nan=False: JSON has no NaN or Infinity; an unmeasured number is null with a note.
        write_atomic(path, json.dumps(verdict.as_json(), indent=2, allow_nan=False) + "\n")
    except OSError as exc:
        raise MlgitError(f"cannot write {path}: {exc.strerror or exc}", "--output takes the path of a file") from None


def read_verdict(path: Path) -> dict:
    """A verdict JSON written by `mlgit analyze --output` (for the evidence of a canary merge request)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MlgitError(f"--verdict {path}: file not found", "pass the file `mlgit analyze --output` wrote") from None
    except (OSError, ValueError) as exc:
        raise MlgitError(f"--verdict {path}: not a verdict JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("verdict") not in {"pass", "fail", "inconclusive"}:
        raise MlgitError(f"--verdict {path}: no `verdict` of pass, fail or inconclusive",
                         "pass the file `mlgit analyze --output` wrote")  # fmt: skip
    return doc


def check_verdict(verdict: dict[str, Any], where: str, env: str, state: CanaryState) -> None:
    """MlgitError unless `verdict` judged `env`'s canary as its pin file (`state`) stands: same environment,
    same stable and canary digests. `where` names the verdict file."""
    hint = f"run `mlgit analyze --env {env} --output FILE` on the canary the pin file pins, and pass that FILE"
    if verdict.get("environment") != env:
        raise MlgitError(f"{where}: environment is {verdict.get('environment')!r}, not {env!r}", hint)
    images = verdict.get("images")
    if not isinstance(images, dict):
        raise MlgitError(f"{where}: no `images` (the digests it judged; written by an older mlgit analyze)", hint)
    for track, pinned in (("stable", state.stable), ("canary", state.canary)):
        judged = images.get(track)
        if _digest(judged) != _digest(pinned):
            raise MlgitError(f"{where}: images.{track} is {judged or 'unpinned'}, but {env} pins "
                             f"{pinned or 'nothing'} as its {track} image", hint)  # fmt: skip


def _digest(image: Any) -> str | None:
    """The digest of `repo@sha256:...` (the pin file's repository may move; the digest is the image)."""
    return image.rsplit("@", 1)[1] if isinstance(image, str) and "@" in image else None
