"""`mlgit promote` as a plain function: plan, gather the evidence, commit the pin, push, open the merge request."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mlgit.config.load import Project
from mlgit.errors import ExitCode, MlgitError
from mlgit.manifests.canary_state import canary_in_text
from mlgit.manifests.diff import manifest_diff, with_pin_file
from mlgit.manifests.pins import pin_in_text, pin_path, pinned_text, split_digest_ref
from mlgit.policy.check import run_check
from mlgit.policy.settings import platform_settings
from mlgit.promote.evidence import Evidence, commit_message, description, junit_summary, links, smoke_summary
from mlgit.promote.git import Git
from mlgit.promote.gitlab_api import GitLabProject, MergeRequest, api_token, project_ref
from mlgit.promote.models import ModelFacts, model_at, source_commit
from mlgit.promote.plan import Plan, plan_promotion

Status = Literal["up-to-date", "dry-run", "created", "updated", "pushed"]
_USERINFO = re.compile(r"^(https?://)[^@/]*@")


@dataclass(frozen=True)
class PromoteOptions:
    source: str
    target: str
    image: str | None = None
    dry_run: bool = False
    test_report: Path | None = None


@dataclass(frozen=True)
class Outcome:
    status: Status
    plan: Plan
    target_branch: str
    notes: list[str]
    url: str | None = None
    description: str | None = None
    pin_diff: str | None = None


def _remote(environ: Mapping[str, str], token: str | None) -> str:
    """Where to fetch and push. In CI the checkout's origin carries CI_JOB_TOKEN, which may not push."""
    repository = environ.get("CI_REPOSITORY_URL", "")
    if token and _USERINFO.match(repository):
        return _USERINFO.sub(lambda m: f"{m.group(1)}oauth2:{token}@", repository)
    return "origin"


def _new_model(git: Git, project: Project, plan: Plan, environ: Mapping[str, str]) -> ModelFacts | None:
    if plan.from_build:
        commit = environ.get("CI_COMMIT_SHA") or git.head()
    elif plan.image_origin == "--image":
        commit = git.head()  # a digest given by hand: assume it was built from what is checked out
    else:
        commit = source_commit(git, "HEAD", str(pin_path(Path(), plan.source)))
    return model_at(git, commit, project.config.model.path) if commit else None


def _push_options(title: str, target_branch: str, labels: list[str]) -> list[str]:
    options = ["merge_request.create", f"merge_request.target={target_branch}", f"merge_request.title={title}"]
    options += [f"merge_request.label={label}" for label in labels]
    return [*options, "merge_request.remove_source_branch"]


def gather_evidence(project: Project, plan: Plan, git: Git, base: str, current: str | None, options: PromoteOptions,
                    environ: Mapping[str, str], manifests: str | None = None,
                    proposed: bytes | None = None) -> Evidence:  # fmt: skip
    """Everything the description shows; refuses (exit 3) when the target's policies deny the new pin.
    `proposed`: the pin file text the merge request commits (a canary's: both images, weight, replicas), which
    the policies then judge as it stands; otherwise they judge the target with plan.image as its stable."""
    config = project.config
    # The same waiver limit and platform policies as the pipeline's policy-check job.
    platform = platform_settings(environ)
    today = dt.date.today()
    if proposed is None:
        policy = run_check(project, [plan.target], pipeline=False, today=today, platform=platform, image=plan.image)
        what = f"{plan.target} with {plan.image}"
        hint = f"`mlgit policy check --env {plan.target} --image {plan.image}` shows the details"
    else:
        with with_pin_file(project, plan.target, proposed) as judged:
            policy = run_check(judged, [plan.target], pipeline=False, today=today, platform=platform)
        what = f"{plan.target} with {plan.pin_file} as this merge request would change it"
        hint = f"`mlgit policy check --env {plan.target}` on a checkout with that pin file shows the details"
    denied = [f for f in policy.findings if f.status == "deny"]
    if denied:
        raise MlgitError(
            f"{what} violates {len(denied)} polic{'y' if len(denied) == 1 else 'ies'}: "
            "not proposing a promotion that cannot deploy",
            hint,
            problems=[f"{f.policy.id} {f.resource_name}: {f.message}" for f in denied],
            exit_code=ExitCode.POLICY_VIOLATION,
        )
    current_commit = source_commit(git, base, plan.pin_file) if current else None
    return Evidence(
        plan=plan,
        model_name=config.name,
        current_image=current,
        new_model=_new_model(git, project, plan, environ),
        current_model=model_at(git, current_commit, config.model.path) if current_commit else None,
        policy=policy,
        tests=junit_summary(options.test_report),
        smoke=smoke_summary(environ, plan.source),
        links=links(environ),
        # A canary passes its own diff: the pin file changes other than by the stable image.
        manifest_diff=manifests if manifests is not None else manifest_diff(project, plan.target, current, plan.image),
    )


@dataclass(frozen=True)
class Checkout:
    """The git side of a proposal: where to push, the token for the API, and the default branch's head."""

    git: Git
    token: str | None
    target_branch: str
    base: str

    def pin_text(self, pin_file: str) -> bytes:
        text = self.git.show(self.base, pin_file)
        if text is None:
            raise MlgitError(
                f"{pin_file} is not on {self.target_branch}", "run `mlgit render` and commit deploy/ first"
            )
        return text

    def gitlab(self) -> GitLabProject:
        """The project on GitLab's API, with the token (MlgitError without one)."""
        if self.token is None:
            raise MlgitError("no API token (MLGIT_GITLAB_TOKEN or GITLAB_TOKEN) to call GitLab's API",
                             "set MLGIT_GITLAB_TOKEN to a token with the api scope")  # fmt: skip
        git = self.git
        remote_url = (
            git.remote if git.remote != "origin" else git.run("remote", "get-url", "origin", what="read origin")
        )
        return GitLabProject(project_ref(git.env, remote_url), self.token)


def checkout(project: Project, environ: Mapping[str, str]) -> Checkout:
    token = api_token(environ)
    git = Git(project.root, _remote(environ, token), environ, secrets=[token or "", environ.get("CI_JOB_TOKEN", "")])
    target_branch = environ.get("CI_DEFAULT_BRANCH") or git.default_branch()
    return Checkout(git, token, target_branch, git.fetch(target_branch))


def unified_diff(path: str, before: bytes, after: bytes) -> str:
    return "".join(difflib.unified_diff(
        before.decode().splitlines(keepends=True), after.decode().splitlines(keepends=True),
        fromfile=f"a/{path}", tofile=f"b/{path}",
    ))  # fmt: skip


@dataclass(frozen=True)
class Proposal:
    """A merge request that changes exactly one file on the default branch."""

    branch: str
    title: str
    path: str  # relative to the project root
    content: bytes
    message: str
    description: str


@dataclass(frozen=True)
class Published:
    status: Literal["created", "updated", "pushed"]
    notes: list[str]
    url: str | None = None


def publish(project: Project, co: Checkout, proposal: Proposal) -> Published:
    """Commit the one file on top of the default branch, push the branch and open (or update) its merge request:
    through the API with a token, else with git push options."""
    config = project.config
    git = co.git
    commit = git.commit_file(co.base, proposal.path, proposal.content, proposal.message)
    changed = git.changed_files(co.base, commit)
    if changed != [git.repo_path(proposal.path)]:
        raise MlgitError(f"the commit would change {', '.join(changed) or 'nothing'}, not only {proposal.path}")
    labels = config.promotion.labels
    if co.token is None:
        notes = ["no API token (MLGIT_GITLAB_TOKEN or GITLAB_TOKEN): the merge request is opened with git push options"]
        if git.env.get("CI_JOB_TOKEN"):
            notes.append("CI_JOB_TOKEN cannot create merge requests through the API")
        if config.promotion.reviewers:
            notes.append(f"reviewers not assigned without a token: {', '.join(config.promotion.reviewers)}")
        notes.append("GitLab fills the description from the commit message; a token puts the full evidence there")
        git.push(commit, proposal.branch, _push_options(proposal.title, co.target_branch, labels))
        return Published("pushed", notes)

    api = co.gitlab()
    reviewer_ids = api.user_ids(config.promotion.reviewers)
    existing = api.find_open(proposal.branch, co.target_branch)
    git.push(commit, proposal.branch)
    request = MergeRequest(
        proposal.branch, co.target_branch, proposal.title, proposal.description, labels, reviewer_ids
    )
    url, created = api.open_or_update(request, existing)
    return Published("created" if created else "updated", [], url)


def _refuse_under_a_canary(project: Project, env: str, pin_text: bytes, where: str) -> None:
    """A new stable under a running canary would change what the canary is measured against, and its analysis
    would compare the canary with an image nobody tried beside it: the canary is promoted or aborted first."""
    if project.config.environment(env).canary is None:
        return
    state = canary_in_text(pin_text, env, where)
    if state.running:
        raise MlgitError(
            f"{env} runs a canary of {state.canary} at {state.weight}% ({where}): not replacing its stable image "
            "under it",
            f"promote the canary (`mlgit canary promote --env {env}`) or abort it (`mlgit canary abort --env "
            f"{env}`) first, or try this digest as the canary: `mlgit promote --canary --replace`",
        )


def promote(project: Project, options: PromoteOptions, environ: Mapping[str, str]) -> Outcome:
    plan = plan_promotion(project.config, project.root, options.source, options.target, options.image, environ)
    co = checkout(project, environ)
    base_text = co.pin_text(plan.pin_file)
    where = f"{plan.pin_file} on {co.target_branch}"
    current = pin_in_text(base_text, plan.target, where)
    if current is not None and split_digest_ref(current)[1] == plan.digest:
        return Outcome(
            "up-to-date", plan, co.target_branch, [f"{plan.target} already pins {plan.digest} on {co.target_branch}"]
        )
    _refuse_under_a_canary(project, plan.target, base_text, where)
    evidence = gather_evidence(project, plan, co.git, co.base, current, options, environ)
    new_text = pinned_text(base_text, plan.target, plan.image, where)
    pin_diff = unified_diff(plan.pin_file, base_text, new_text)
    text = description(evidence)
    if options.dry_run:
        return Outcome("dry-run", plan, co.target_branch, [], description=text, pin_diff=pin_diff)
    proposal = Proposal(plan.branch, plan.title, plan.pin_file, new_text, commit_message(evidence), text)
    done = publish(project, co, proposal)
    return Outcome(done.status, plan, co.target_branch, done.notes, done.url, text, pin_diff)
