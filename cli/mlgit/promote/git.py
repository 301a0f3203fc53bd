"""The git side of a promotion, through the git command line: read revisions, commit, push.

The promotion commit is built with plumbing (hash-object, a temporary index, commit-tree) on top of the
remote's default branch: the user's working tree, index and checked-out branch are never touched, and
the commit differs from its parent in exactly the one pin file.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlgit.errors import MlgitError

TIMEOUT = 120
# Promotion commits carry these trailers, so that later promotions can tell which commit an image
# was built from (a pin change merged later sits on top of newer model files than the image holds).
SOURCE_COMMIT_TRAILER = "Mlgit-Source-Commit"


class Git:
    """git in the repository holding `root`, talking to `remote` (a remote name or URL)."""

    def __init__(self, root: Path, remote: str, environ: Mapping[str, str], secrets: Sequence[str] = ()) -> None:
        self.root = root
        self.remote = remote
        self.secrets = [s for s in secrets if s]
        self.env = {**environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        # In CI nobody configured git; the user who pressed the promote button authors the commit.
        for role in ("AUTHOR", "COMMITTER"):
            if environ.get("GITLAB_USER_NAME") and f"GIT_{role}_NAME" not in environ:
                self.env[f"GIT_{role}_NAME"] = environ["GITLAB_USER_NAME"]
            if environ.get("GITLAB_USER_EMAIL") and f"GIT_{role}_EMAIL" not in environ:
                self.env[f"GIT_{role}_EMAIL"] = environ["GITLAB_USER_EMAIL"]
        self.prefix = self.run("rev-parse", "--show-prefix", what="find the git repository")

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[MASKED]")
        return text

    def _exec(
        self, args: Sequence[str], stdin: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(["git", *args], cwd=self.root, env=env or self.env, input=stdin,
                                  capture_output=True, timeout=TIMEOUT, check=False)  # fmt: skip
        except FileNotFoundError:
            raise MlgitError("git is not installed", "install git (promotion commits and pushes with it)") from None
        except subprocess.TimeoutExpired:
            raise MlgitError(f"git {args[0]} did not finish in {TIMEOUT} s", "check the remote is reachable") from None

    def run(self, *args: str, what: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
        result = self._exec(args, stdin, env)
        if result.returncode:
            stderr = self.mask(result.stderr.decode(errors="replace").strip())
            raise MlgitError(f"could not {what}: git {args[0]} failed: {stderr}")
        return result.stdout.decode(errors="replace").strip()

    def repo_path(self, project_path: str) -> str:
        """A path relative to the project root, as git names it (relative to the repository's top)."""
        return self.prefix + project_path

    def show(self, rev: str, project_path: str) -> bytes | None:
        """The file at `rev`, or None when `rev` has no such file."""
        result = self._exec(["show", f"{rev}:{self.repo_path(project_path)}"])
        return result.stdout if result.returncode == 0 else None

    def default_branch(self) -> str:
        """The branch the remote's HEAD points at (what GitLab calls the default branch)."""
        text = self.run("ls-remote", "--symref", self.remote, "HEAD", what=f"ask {self.remote} for its default branch")
        match = re.search(r"^ref: refs/heads/(\S+)\tHEAD", text, re.M)
        if not match:
            raise MlgitError(f"{self.mask(self.remote)} names no default branch", "set CI_DEFAULT_BRANCH")
        return match.group(1)

    def fetch(self, branch: str) -> str:
        """Fetch `branch` from the remote; its commit."""
        self.run("fetch", "--quiet", "--no-tags", self.remote, f"refs/heads/{branch}", what=f"fetch {branch}")
        return self.run("rev-parse", "FETCH_HEAD^{commit}", what=f"read the fetched {branch}")

    def head(self) -> str:
        return self.run("rev-parse", "HEAD", what="read HEAD")

    def last_change(self, rev: str, project_path: str) -> str | None:
        """The newest commit reachable from `rev` that changed the file (None: never committed)."""
        pathspec = f":(top){self.repo_path(project_path)}"  # pathspecs are relative to the working directory
        out = self.run("log", "-1", "--format=%H", rev, "--", pathspec, what="read the history")
        return out or None

    def trailer(self, commit: str, key: str) -> str | None:
        fmt = f"--format=%(trailers:key={key},valueonly,separator=%x00)"
        out = self.run("log", "-1", fmt, commit, what=f"read the trailers of {commit[:12]}")
        return out.split("\0")[0].strip() or None

    def commit_file(self, base: str, project_path: str, content: bytes, message: str) -> str:
        """A commit on top of `base` that changes only `project_path` to `content` (nothing checked out)."""
        blob = self.run("hash-object", "-w", "--stdin", what="store the pin file", stdin=content)
        with tempfile.TemporaryDirectory(prefix="mlgit-promote-") as tmp:
            env = {**self.env, "GIT_INDEX_FILE": os.path.join(tmp, "index")}
            self.run("read-tree", base, what="read the base tree", env=env)
            cacheinfo = f"100644,{blob},{self.repo_path(project_path)}"
            self.run("update-index", "--add", "--cacheinfo", cacheinfo, what="stage the pin file", env=env)
            tree = self.run("write-tree", what="write the promotion tree", env=env)
        return self.run("commit-tree", tree, "-p", base, "-F", "-", what="commit the promotion",
                        stdin=message.encode())  # fmt: skip

    def changed_files(self, base: str, commit: str) -> list[str]:
        return self.run("diff", "--name-only", base, commit, what="list the changed files").splitlines()

    def push(self, commit: str, branch: str, options: Sequence[str] = ()) -> None:
        """Force-push `commit` as `branch` (the promotion branch belongs to mlgit), with push options."""
        args = ["push", "--force", "--porcelain"]
        args += [a for option in options for a in ("-o", option)]
        result = self._exec([*args, self.remote, f"{commit}:refs/heads/{branch}"])
        if result.returncode == 0:
            return
        text = self.mask((result.stderr + result.stdout).decode(errors="replace").strip())
        raise _push_error(branch, text, bool(options))


def _push_error(branch: str, text: str, with_options: bool) -> MlgitError:
    lower = text.lower()
    if with_options and "push options" in lower:
        return MlgitError(
            f"the remote does not accept push options, so no merge request can be opened without an API token: {text}",
            "set MLGIT_GITLAB_TOKEN (or GITLAB_TOKEN) to a token with the api scope, or push to a GitLab remote",
        )
    if "protected branch" in lower or "[remote rejected]" in lower or "pre-receive hook declined" in lower:
        return MlgitError(
            f"the remote rejected the push of {branch}: {text}",
            f"promotion branches ({branch}) must not be protected, and the pusher needs at least the "
            "Developer role; see docs/promotion.md",
        )
    if "403" in lower or "permission" in lower or "not allowed" in lower or "denied" in lower:
        return MlgitError(
            f"no permission to push {branch}: {text}",
            "CI_JOB_TOKEN cannot push by default: set MLGIT_GITLAB_TOKEN to a project access token with "
            "write_repository and api",
        )
    return MlgitError(f"could not push {branch}: {text}")
