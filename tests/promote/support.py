"""A model repository with a local bare `origin` that records push options, as GitLab would see them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
REPOSITORY = "registry.example.com/ml/linear"
IMAGE_A = f"{REPOSITORY}@{DIGEST_A}"
IMAGE_B = f"{REPOSITORY}@{DIGEST_B}"
IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}
# Records every push's options, one per line, then a line `--` (hooks see them as GIT_PUSH_OPTION_N).
RECORD_OPTIONS = """#!/bin/sh
i=0
while [ "$i" -lt "${GIT_PUSH_OPTION_COUNT:-0}" ]; do
  eval "echo \\"\\$GIT_PUSH_OPTION_$i\\""
  i=$((i + 1))
done >> "$GIT_DIR/push-options.txt"
echo -- >> "$GIT_DIR/push-options.txt"
"""
PROTECTED = """#!/bin/sh
echo "GitLab: You are not allowed to push code to protected branches on this project." >&2
exit 1
"""


class Remote:
    """`repo` (a git checkout of a model repository) and its bare origin."""

    def __init__(self, repo: Path, origin: Path, push_options: bool = True) -> None:
        self.repo, self.origin = repo, origin
        git("init", "-q", "--bare", "-b", "main", str(origin), cwd=repo.parent)
        if push_options:
            git("config", "receive.advertisePushOptions", "true", cwd=origin)
        self.hook(RECORD_OPTIONS)
        git("init", "-q", "-b", "main", cwd=repo)
        self.commit("model repository")
        git("remote", "add", "origin", str(origin), cwd=repo)
        git("push", "-q", "origin", "main", cwd=repo)

    def hook(self, script: str) -> None:
        path = self.origin / "hooks" / "pre-receive"
        path.write_text(script, encoding="utf-8")
        path.chmod(0o755)

    def commit(self, message: str) -> str:
        git("add", "-A", cwd=self.repo)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.repo)
        return git("rev-parse", "HEAD", cwd=self.repo)

    def push(self) -> None:
        git("push", "-q", "origin", "HEAD:main", cwd=self.repo)

    def pushes(self) -> list[list[str]]:
        """Push options of each push so far (an empty list for a push without options)."""
        path = self.origin / "push-options.txt"
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        return [block.splitlines() for block in text.split("--\n")[:-1]]

    def branch(self, name: str) -> str | None:
        out = git("ls-remote", str(self.origin), f"refs/heads/{name}", cwd=self.repo)
        return out.split()[0] if out else None

    def show(self, rev: str, path: str) -> str:
        return git("show", f"{rev}:{path}", cwd=self.origin)


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **IDENTITY}, capture_output=True, text=True)
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()
