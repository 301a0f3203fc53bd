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
from mlgit.manifests.diff import manifest_diff
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


def _push_options(plan: Plan, target_branch: str, labels: list[str]) -> list[str]:
    options = ["merge_request.create", f"merge_request.target={target_branch}", f"merge_request.title={plan.title}"]
    options += [f"merge_request.label={label}" for label in labels]
    return [*options, "merge_request.remove_source_branch"]


def _evidence(project: Project, plan: Plan, git: Git, base: str, current: str | None, options: PromoteOptions,
              environ: Mapping[str, str]) -> Evidence:  # fmt: skip
    """Everything the description shows; refuses (exit 3) when the target's policies deny the new pin."""
    config = project.config
    # The same waiver limit and platform policies as the pipeline's policy-check job.
    platform = platform_settings(environ)
    policy = run_check(
        project, [plan.target], pipeline=False, today=dt.date.today(), platform=platform, image=plan.image
    )
    denied = [f for f in policy.findings if f.status == "deny"]
    if denied:
        raise MlgitError(
            f"{plan.target} with {plan.image} violates {len(denied)} polic{'y' if len(denied) == 1 else 'ies'}: "
            "not proposing a promotion that cannot deploy",
            f"`mlgit policy check --env {plan.target} --image {plan.image}` shows the details",
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
        manifest_diff=manifest_diff(project, plan.target, current, plan.image),
    )


def promote(project: Project, options: PromoteOptions, environ: Mapping[str, str]) -> Outcome:
    config = project.config
    plan = plan_promotion(config, project.root, options.source, options.target, options.image, environ)
    token = api_token(environ)
    git = Git(project.root, _remote(environ, token), environ, secrets=[token or "", environ.get("CI_JOB_TOKEN", "")])
    target_branch = environ.get("CI_DEFAULT_BRANCH") or git.default_branch()
    base = git.fetch(target_branch)
    base_text = git.show(base, plan.pin_file)
    if base_text is None:
        raise MlgitError(f"{plan.pin_file} is not on {target_branch}", "run `mlgit render` and commit deploy/ first")
    current = pin_in_text(base_text, plan.target, f"{plan.pin_file} on {target_branch}")
    if current is not None and split_digest_ref(current)[1] == plan.digest:
        return Outcome(
            "up-to-date", plan, target_branch, [f"{plan.target} already pins {plan.digest} on {target_branch}"]
        )

    evidence = _evidence(project, plan, git, base, current, options, environ)
    new_text = pinned_text(base_text, plan.target, plan.image, f"{plan.pin_file} on {target_branch}")
    pin_diff = "".join(difflib.unified_diff(
        base_text.decode().splitlines(keepends=True), new_text.decode().splitlines(keepends=True),
        fromfile=f"a/{plan.pin_file}", tofile=f"b/{plan.pin_file}",
    ))  # fmt: skip
    text = description(evidence)
    if options.dry_run:
        return Outcome("dry-run", plan, target_branch, [], description=text, pin_diff=pin_diff)

    commit = git.commit_file(base, plan.pin_file, new_text, commit_message(evidence))
    changed = git.changed_files(base, commit)
    if changed != [git.repo_path(plan.pin_file)]:
        raise MlgitError(f"the promotion commit would change {', '.join(changed)}, not only {plan.pin_file}")
    labels = config.promotion.labels
    if token is None:
        notes = ["no API token (MLGIT_GITLAB_TOKEN or GITLAB_TOKEN): the merge request is opened with git push options"]
        if environ.get("CI_JOB_TOKEN"):
            notes.append("CI_JOB_TOKEN cannot create merge requests through the API")
        if config.promotion.reviewers:
            notes.append(f"reviewers not assigned without a token: {', '.join(config.promotion.reviewers)}")
        notes.append("GitLab fills the description from the commit message; a token puts the full evidence there")
        git.push(commit, plan.branch, _push_options(plan, target_branch, labels))
        return Outcome("pushed", plan, target_branch, notes, description=text, pin_diff=pin_diff)

    remote_url = git.remote if git.remote != "origin" else git.run("remote", "get-url", "origin", what="read origin")
    api = GitLabProject(project_ref(environ, remote_url), token)
    reviewer_ids = api.user_ids(config.promotion.reviewers)
    existing = api.find_open(plan.branch, target_branch)
    git.push(commit, plan.branch)
    request = MergeRequest(plan.branch, target_branch, plan.title, text, labels, reviewer_ids)
    url, created = api.open_or_update(request, existing)
    return Outcome("created" if created else "updated", plan, target_branch, [], url, text, pin_diff)
