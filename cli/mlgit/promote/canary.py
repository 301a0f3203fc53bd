"""Canary merge requests: start a canary, set its weight, promote it, abort it, each changing only the pin file.

The canary state (both images, the canary's weight and replicas) lives in the environment's pin file
(mlgit.manifests.canary_state), so every step here is a commit that changes that one file, proposed through the
same machinery as a promotion (promote/run.py: plumbing commit on the default branch, push, merge request).
Every step of one environment uses the branch mlgit/canary-<env>: a newer step replaces an open older one
(an abort replaces a pending weight change).

Commits carry two trailers, so that `mlgit promote --from <env>` keeps finding the commit the stable image was
built from although canary steps changed the pin file since: Mlgit-Source-Commit (the stable image's source)
and Mlgit-Canary-Source-Commit (the canary image's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mlgit.analysis.run import check_verdict
from mlgit.config.canary import canary_of
from mlgit.config.load import Project
from mlgit.errors import MlgitError
from mlgit.manifests.canary_state import KEEP, CanaryState, canary_in_text, canary_text
from mlgit.manifests.kustomize import kustomize
from mlgit.manifests.pins import pin_path, split_digest_ref
from mlgit.manifests.render import DEPLOY
from mlgit.promote import run
from mlgit.promote.canary_evidence import CANARY_SOURCE_TRAILER, Step, canary_description, canary_message
from mlgit.promote.evidence import description
from mlgit.promote.models import source_commit
from mlgit.promote.plan import plan_promotion

BRANCH_PREFIX = "mlgit/canary-"
CanaryStatus = Literal["up-to-date", "dry-run", "created", "updated", "pushed", "merged"]


@dataclass(frozen=True)
class CanaryOptions:
    env: str
    dry_run: bool = False
    verdict: dict[str, Any] | None = None  # a verdict JSON of `mlgit analyze`, shown in the description
    merge: bool = False  # merge the merge request at once through the API
    verdict_file: str = "--verdict"  # where the verdict came from, for errors


@dataclass(frozen=True)
class CanaryOutcome:
    status: CanaryStatus
    env: str
    title: str
    branch: str
    target_branch: str
    notes: list[str]
    url: str | None = None
    description: str | None = None
    pin_diff: str | None = None


def _digest(image: str | None) -> str | None:
    return split_digest_ref(image)[1] if image else None


def _short(image: str | None) -> str:
    """sha256: and 12 hex digits, as promotion titles show a digest."""
    digest = _digest(image)
    return digest[:19] if digest else "unpinned"


def _rendered(project: Project, env: str, pin_text: bytes) -> str:
    """The manifests of `env` with its pin file holding `pin_text` (the working tree's deploy/ otherwise)."""
    with run.with_pin_file(project, env, pin_text) as proposed:
        return kustomize(proposed.root / DEPLOY / "overlays" / env).yaml


def _manifest_diff(project: Project, env: str, before: bytes, after: bytes) -> str:
    return run.unified_diff(f"{env} manifests", _rendered(project, env, before).encode(),
                            _rendered(project, env, after).encode())  # fmt: skip


def _judged_this_canary(options: CanaryOptions, state: CanaryState) -> None:
    """A verdict shown on (or deciding) a step must be about this environment's canary and stable as pinned."""
    if options.verdict is not None:
        check_verdict(options.verdict, options.verdict_file, options.env, state)


@dataclass(frozen=True)
class _Base:
    """The default branch as a step starts from: its pin file, canary state and image sources."""

    co: run.Checkout
    pin_file: str
    text: bytes
    state: CanaryState
    stable_source: str | None
    canary_source: str | None

    @property
    def where(self) -> str:
        return f"{self.pin_file} on {self.co.target_branch}"


def _base(project: Project, env: str, environ: Mapping[str, str]) -> _Base:
    co = run.checkout(project, environ)
    pin_file = str(pin_path(Path(), env))
    text = co.pin_text(pin_file)
    state = canary_in_text(text, env, f"{pin_file} on {co.target_branch}")
    changed = co.git.last_change(co.base, pin_file)
    canary_source = co.git.trailer(changed, CANARY_SOURCE_TRAILER) if changed else None
    return _Base(co, pin_file, text, state, source_commit(co.git, co.base, pin_file), canary_source)


def _propose(project: Project, options: CanaryOptions, base: _Base, step: Step,
             promotion: Callable[[str, bytes], tuple[str, str | None]] | None = None) -> CanaryOutcome:  # fmt: skip
    """Commit `step`'s change of the pin file, push it and open its merge request (and merge it with --merge).
    `promotion(manifest diff, new pin file text)`: a canary start's promotion evidence and the commit its image
    was built from."""
    env, co = options.env, base.co
    after, before = step.after, base.state
    new_text = canary_text(
        base.text, env, base.where,
        stable=after.stable if after.stable != before.stable else KEEP,
        canary=after.canary if after.canary != before.canary else KEEP,
        weight=after.weight, replicas=after.replicas,
    )  # fmt: skip
    branch = f"{BRANCH_PREFIX}{env}"
    pin_diff = run.unified_diff(base.pin_file, base.text, new_text)
    manifests = _manifest_diff(project, env, base.text, new_text)
    evidence, new_source = promotion(manifests, new_text) if promotion is not None else (None, None)
    text = canary_description(project.config.name, base.pin_file, step, options.verdict, manifests, evidence)
    if options.dry_run:
        return CanaryOutcome("dry-run", env, step.title, branch, co.target_branch, [], None, text, pin_diff)
    if options.merge and co.token is None:
        raise MlgitError(f"merging the canary merge request of {env} at once needs an API token",
                         "set MLGIT_GITLAB_TOKEN (or GITLAB_TOKEN) to a token with the api scope, or leave out "
                         "--merge (on_failure: open-abort-mr)")  # fmt: skip
    stable_source = base.canary_source if step.action == "promote" else base.stable_source
    canary_source = new_source if step.action == "start" else base.canary_source
    message = canary_message(step, base.pin_file, stable_source, canary_source)
    proposal = run.Proposal(branch, step.title, base.pin_file, new_text, message, text)
    done = run.publish(project, co, proposal)
    if not options.merge:
        return CanaryOutcome(done.status, env, step.title, branch, co.target_branch, done.notes, done.url, text,
                             pin_diff)  # fmt: skip
    url = co.gitlab().merge(branch, co.target_branch)
    return CanaryOutcome("merged", env, step.title, branch, co.target_branch, done.notes, url, text, pin_diff)


def start(
    project: Project,
    source: str,
    options: CanaryOptions,
    environ: Mapping[str, str],
    *,
    image: str | None = None,
    replace: bool = False,
    test_report: Path | None = None,
) -> CanaryOutcome:
    """`mlgit promote --from SOURCE --to ENV --canary`: pin the digest as ENV's canary at canary.weight."""
    env = options.env
    canary = canary_of(project.config, env)
    plan = plan_promotion(project.config, project.root, source, env, image, environ)
    base = _base(project, env, environ)
    state = base.state
    branch = f"{BRANCH_PREFIX}{env}"

    def nothing(why: str) -> CanaryOutcome:
        return CanaryOutcome("up-to-date", env, "", branch, base.co.target_branch, [why])

    if _digest(state.stable) == plan.digest:
        return nothing(f"{env} already runs {plan.digest} as its stable image: nothing to try as a canary")
    if state.running and _digest(state.canary) == plan.digest:
        return nothing(f"{env} already runs {plan.digest} as its canary at {state.weight}%")
    if state.running and not replace:
        raise MlgitError(
            f"{env} already runs a canary of {state.canary} at {state.weight}% ({state.replicas} replicas)",
            f"promote it (`mlgit canary promote --env {env}`) or abort it (`mlgit canary abort --env {env}`) "
            "first, or pass --replace to replace it with this digest",
        )
    after = dataclasses.replace(state, canary=plan.image, weight=canary.weight, replicas=canary.replicas)
    step = Step("start", env, f"Canary {_short(plan.image)} in {env} at {canary.weight}% (from {source})", state, after)
    promote_options = run.PromoteOptions(source, env, image, options.dry_run, test_report)

    def promotion(manifests: str, proposed: bytes) -> tuple[str, str | None]:
        evidence = run.gather_evidence(project, plan, base.co.git, base.co.base, state.stable, promote_options,
                                       environ, manifests, proposed)  # fmt: skip
        return description(evidence), evidence.source_commit

    return _propose(project, options, base, step, promotion)


def set_weight(project: Project, weight: int, options: CanaryOptions, environ: Mapping[str, str]) -> CanaryOutcome:
    """`mlgit canary weight --env ENV N`: send N% of requests to the running canary."""
    env = options.env
    canary_of(project.config, env)
    base = _base(project, env, environ)
    state = base.state
    _judged_this_canary(options, state)
    if state.canary is None or state.replicas == 0:
        raise MlgitError(f"{env} runs no canary ({'no canary image pinned' if state.canary is None else '0 replicas'})",
                         f"start one with `mlgit promote --from <previous> --to {env} --canary`")  # fmt: skip
    if state.weight == weight:
        branch = f"{BRANCH_PREFIX}{env}"
        return CanaryOutcome("up-to-date", env, "", branch, base.co.target_branch,
                             [f"the canary of {env} already gets {weight}%"])  # fmt: skip
    title = f"Canary weight in {env}: {state.weight}% -> {weight}%"
    return _propose(
        project, options, base, Step("weight", env, title, state, dataclasses.replace(state, weight=weight))
    )


def promote_canary(project: Project, options: CanaryOptions, environ: Mapping[str, str]) -> CanaryOutcome:
    """`mlgit canary promote --env ENV`: the canary's digest becomes the stable pin; weight 0, canary replicas 0."""
    env = options.env
    canary_of(project.config, env)
    base = _base(project, env, environ)
    state = base.state
    _judged_this_canary(options, state)
    if options.verdict is not None and options.verdict.get("verdict") == "fail":
        raise MlgitError(f"the analysis of the canary of {env} failed: not promoting it",
                         f"abort it: `mlgit canary abort --env {env}`")  # fmt: skip
    if not state.running:
        raise MlgitError(f"{env} runs no canary to promote (weight {state.weight}%, {state.replicas} replicas)",
                         f"start one with `mlgit promote --from <previous> --to {env} --canary`")  # fmt: skip
    after = CanaryState(state.canary, state.canary, 0, 0)
    step = Step("promote", env, f"Promote the canary of {env}: {_short(state.canary)}", state, after)
    return _propose(project, options, base, step)


def abort(project: Project, options: CanaryOptions, environ: Mapping[str, str]) -> CanaryOutcome:
    """`mlgit canary abort --env ENV`: weight 0 and canary replicas 0 (the canary image stays pinned, idle)."""
    env = options.env
    canary_of(project.config, env)
    base = _base(project, env, environ)
    state = base.state
    if not state.running:
        return CanaryOutcome("up-to-date", env, "", f"{BRANCH_PREFIX}{env}", base.co.target_branch,
                             [f"{env} runs no canary: nothing to abort"])  # fmt: skip
    after = dataclasses.replace(state, weight=0, replicas=0)
    return _propose(project, options, base, Step("abort", env, f"Abort the canary of {env}: {_short(state.canary)}",
                                                  state, after))  # fmt: skip


def abort_failed(project: Project, env: str, verdict: dict[str, Any], environ: Mapping[str, str]) -> CanaryOutcome:
    """The abort `mlgit analyze --abort-on-fail` opens: merged at once when canary.on_failure is merge-abort-mr."""
    merge = canary_of(project.config, env).on_failure == "merge-abort-mr"
    return abort(project, CanaryOptions(env, verdict=verdict, merge=merge), environ)


def summary(outcome: CanaryOutcome) -> str:
    """One line for the terminal, after a step that changed something (or found nothing to change)."""
    if outcome.status == "up-to-date":
        return "nothing to change: " + "; ".join(outcome.notes)
    if outcome.status == "pushed":
        return f"pushed {outcome.branch}; GitLab opens or updates its merge request into {outcome.target_branch}"
    if outcome.status == "merged":
        return f"merged merge request {outcome.url}: {outcome.title}"
    return f"{outcome.status} merge request {outcome.url}: {outcome.title}"
