"""Open or update the promotion merge request through GitLab's REST API (python-gitlab)."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlgit.errors import MlgitError

# MLGIT_ first: a GITLAB_TOKEN exported for other tools may lack the scopes a promotion needs.
TOKEN_VARIABLES = ("MLGIT_GITLAB_TOKEN", "GITLAB_TOKEN")
# GitLab checks a new merge request's mergeability after the push, asynchronously: until then a merge is
# refused with 405. Retried this often, a second apart, before giving up.
MERGE_ATTEMPTS = 15
_SSH_SCP = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*?)(?:\.git)?/?$")
_URL = re.compile(
    r"^(?P<scheme>https?|ssh)://(?:[^@/]+@)?(?P<host>[^/:]+)(?::(?P<port>\d+))?/(?P<path>.+?)(?:\.git)?/?$"
)


def api_token(environ: Mapping[str, str]) -> str | None:
    return next((environ[v] for v in TOKEN_VARIABLES if environ.get(v)), None)


@dataclass(frozen=True)
class ProjectRef:
    url: str  # e.g. https://gitlab.example.com
    project: str  # numeric id or group/project path


def project_ref(environ: Mapping[str, str], remote_url: str) -> ProjectRef:
    """The GitLab server and project: CI_SERVER_URL and CI_PROJECT_ID in CI, else read from the git remote."""
    if environ.get("CI_SERVER_URL") and environ.get("CI_PROJECT_ID"):
        return ProjectRef(environ["CI_SERVER_URL"].rstrip("/"), environ["CI_PROJECT_ID"])
    match = _URL.match(remote_url)
    if match:
        scheme = match.group("scheme")
        port = match.group("port") if scheme != "ssh" else None
        host = f"{match.group('host')}:{port}" if port else match.group("host")
        return ProjectRef(f"{'https' if scheme == 'ssh' else scheme}://{host}", match.group("path"))
    match = _SSH_SCP.match(remote_url)
    if match and "/" in match.group("path"):
        return ProjectRef(f"https://{match.group('host')}", match.group("path"))
    raise MlgitError(f"cannot tell the GitLab project from the remote {remote_url!r}",
                     "set CI_SERVER_URL (e.g. https://gitlab.example.com) and CI_PROJECT_ID")  # fmt: skip


@dataclass(frozen=True)
class MergeRequest:
    source_branch: str
    target_branch: str
    title: str
    description: str
    labels: list[str]
    reviewer_ids: list[int]


def _translate(exc: Exception, what: str, ref: ProjectRef) -> MlgitError:
    import gitlab.exceptions

    if isinstance(exc, gitlab.exceptions.GitlabAuthenticationError):
        return MlgitError(f"GitLab at {ref.url} rejected the token (401) while trying to {what}",
                          "check MLGIT_GITLAB_TOKEN: not expired, scope api")  # fmt: skip
    if isinstance(exc, gitlab.exceptions.GitlabError):
        code = exc.response_code
        if code == 403:
            return MlgitError(f"no permission to {what} in GitLab project {ref.project} (403)",
                              "the token needs the api scope and at least the Developer role")  # fmt: skip
        if code == 404:
            return MlgitError(f"GitLab project {ref.project} not found at {ref.url} (404) while trying to {what}",
                              "check CI_PROJECT_ID or the git remote, and that the token sees the project")  # fmt: skip
        return MlgitError(f"GitLab could not {what}: HTTP {code}: {exc.error_message}")
    return MlgitError(f"cannot reach GitLab at {ref.url} to {what}: {exc}")


@contextlib.contextmanager
def _api_errors(what: str, ref: ProjectRef) -> Iterator[None]:
    import gitlab.exceptions
    import requests

    try:
        yield
    except (gitlab.exceptions.GitlabError, requests.RequestException) as exc:
        raise _translate(exc, what, ref) from None


class GitLabProject:
    """The project's merge requests and users, through one authenticated python-gitlab client."""

    def __init__(self, ref: ProjectRef, token: str) -> None:
        import gitlab

        self.ref = ref
        self.client = gitlab.Gitlab(ref.url, private_token=token, retry_transient_errors=False)
        self.project: Any = self.client.projects.get(ref.project, lazy=True)

    def user_ids(self, usernames: list[str]) -> list[int]:
        """GitLab user ids of `usernames`; MlgitError naming the ones that do not exist."""
        ids, unknown = [], []
        for name in usernames:
            with _api_errors(f"look up user {name}", self.ref):
                found = self.client.users.list(username=name, get_all=False)
            if found:
                ids.append(found[0].id)
            else:
                unknown.append(name)
        if unknown:
            raise MlgitError(f"promotion.reviewers names unknown GitLab user(s): {', '.join(unknown)}",
                             "fix the usernames in mlgit.yaml (without @)")  # fmt: skip
        return ids

    def find_open(self, source_branch: str, target_branch: str) -> Any | None:
        with _api_errors("list merge requests", self.ref):
            found = self.project.mergerequests.list(
                state="opened", source_branch=source_branch, target_branch=target_branch, get_all=False
            )
        return found[0] if found else None

    def update(self, mr: Any, request: MergeRequest) -> str:
        mr.title = request.title
        mr.description = request.description
        mr.labels = request.labels
        mr.reviewer_ids = request.reviewer_ids
        with _api_errors(f"update merge request !{mr.iid}", self.ref):
            mr.save()
        return str(mr.web_url)

    def open_or_update(self, request: MergeRequest, existing: Any | None) -> tuple[str, bool]:
        """Update `existing`, else create; (web URL, created?)."""
        import gitlab.exceptions
        import requests

        if existing is not None:
            return self.update(existing, request), False
        fields = {
            "source_branch": request.source_branch,
            "target_branch": request.target_branch,
            "title": request.title,
            "description": request.description,
            "labels": request.labels,
            "reviewer_ids": request.reviewer_ids,
            "remove_source_branch": True,
        }
        try:
            mr = self.project.mergerequests.create(fields)
        except (gitlab.exceptions.GitlabError, requests.RequestException) as exc:
            if not isinstance(exc, gitlab.exceptions.GitlabCreateError) or exc.response_code != 409:
                raise _translate(exc, "create the merge request", self.ref) from None
            # Another promotion opened one between our lookup and our create: update that one.
            existing = self.find_open(request.source_branch, request.target_branch)
            if existing is None:
                raise MlgitError(f"GitLab refused the merge request (409): {exc.error_message}",
                                 f"look for a merge request from {request.source_branch}") from None  # fmt: skip
            return self.update(existing, request), False
        return str(mr.web_url), True

    def merge(self, source_branch: str, target_branch: str, pause_seconds: float = 1.0) -> str:
        """Merge the open merge request from `source_branch` now (as the project merges: a merge commit or a
        fast-forward); its web URL."""
        import gitlab.exceptions
        import requests

        mr = self.find_open(source_branch, target_branch)
        if mr is None:
            raise MlgitError(f"no open merge request from {source_branch} into {target_branch} to merge")
        attempt = 0
        while True:
            attempt += 1
            try:
                mr.merge(should_remove_source_branch=True)
                return str(mr.web_url)
            except gitlab.exceptions.GitlabMRClosedError as exc:
                if exc.response_code != 405 or attempt >= MERGE_ATTEMPTS:
                    raise MlgitError(
                        f"GitLab did not merge !{mr.iid} (HTTP {exc.response_code}: {exc.error_message})",
                        "merge it by hand; a project that requires a passing pipeline or approvals cannot merge "
                        "at once (then use on_failure: open-abort-mr)",
                    ) from None
            except (gitlab.exceptions.GitlabError, requests.RequestException) as exc:
                raise _translate(exc, f"merge !{mr.iid}", self.ref) from None
            time.sleep(pause_seconds)
