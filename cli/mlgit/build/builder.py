"""Run one image build: BuildKit through the docker CLI where it can, else the SDK's legacy builder.

Both receive the same minimal context as a tar (context.py). Progress lines go to a callback as they
come; a failed build becomes an MlgitError naming the failing step with that step's last output lines.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlgit.build.context import write_context
from mlgit.build.engine import buildkit_cli
from mlgit.errors import MlgitError

Progress = Callable[[str], None]
STEP_OUTPUT_LINES = 20
_VERTEX = re.compile(r"^#(\d+) (.*)$")
_TIMED = re.compile(r"^\d+\.\d+ (.*)$")


@dataclass(frozen=True)
class BuildRequest:
    """One image build: where its files are, what to call the image, and what to pass to the Dockerfile."""

    context_dir: Path
    dockerfile: Path
    tag: str
    build_args: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, Path] = field(default_factory=dict)  # BuildKit secret id -> file (never in a layer)
    network: str | None = None  # e.g. "host" where the default bridge has no NAT
    hint: str = "the failing step's output is above"
    no_cache: bool = False


def build_image(client: Any, request: BuildRequest, progress: Progress) -> str:
    """Build `request`, tag it, and return the image ID (sha256:...)."""
    cli = buildkit_cli()
    if cli is None and request.secrets:
        raise MlgitError(
            "this build needs BuildKit (it passes secrets) but no docker CLI that runs BuildKit was found",
            "install a docker CLI with BuildKit (Debian's docker.io, or docker-ce-cli with docker-buildx-plugin), "
            "or name one with MLGIT_DOCKER_CLI",
        )
    with tempfile.TemporaryFile(prefix="mlgit-context-") as context:
        write_context(request.context_dir, request.dockerfile, context)
        if cli is not None:
            return _buildkit(cli, request, context, progress)
        return _legacy(client, request, context, progress)


def _buildkit(cli: str, request: BuildRequest, context: Any, progress: Progress) -> str:
    with tempfile.TemporaryDirectory(prefix="mlgit-build-") as tmp:
        iidfile = Path(tmp) / "iid"
        argv = [cli, "build", "--progress=plain", "--iidfile", str(iidfile), "-t", request.tag]
        argv += [f"--build-arg={k}={v}" for k, v in request.build_args.items()]
        argv += [f"--secret=id={k},src={v}" for k, v in request.secrets.items()]
        argv += [f"--network={request.network}"] if request.network else []
        argv += ["--no-cache"] if request.no_cache else []
        argv.append("-")  # the context is the tar on stdin
        proc = subprocess.Popen(
            argv,
            stdin=context,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )
        assert proc.stdout is not None
        lines = []
        for raw in proc.stdout:
            lines.append(raw.rstrip("\n"))
            progress(lines[-1])
        if proc.wait() != 0:
            raise buildkit_failure(lines, request)
        return iidfile.read_text(encoding="utf-8").strip()


def buildkit_failure(lines: list[str], request: BuildRequest) -> MlgitError:
    """The failing step of BuildKit's plain progress output, with that step's own last lines."""
    names: dict[str, str] = {}
    output: dict[str, list[str]] = {}
    failed = None
    for line in lines:
        match = _VERTEX.match(line)
        if not match:
            continue
        vertex, text = match.groups()
        if vertex not in names:
            names[vertex] = text
        elif text.startswith("ERROR:"):
            failed = failed or vertex
            output.setdefault(vertex, []).append(text)
        elif timed := _TIMED.match(text):
            output.setdefault(vertex, []).append(timed.group(1))
    summary = [line for line in lines if line.strip()][-1:] or ["(no output)"]
    if failed is None:
        return MlgitError(f"docker build of {request.dockerfile} failed: {summary[0]}", request.hint)
    return MlgitError(
        f"docker build of {request.dockerfile} failed at step {names[failed]}",
        request.hint,
        problems=output.get(failed, [])[-STEP_OUTPUT_LINES:],
    )


def _legacy(client: Any, request: BuildRequest, context: Any, progress: Progress) -> str:
    import docker.errors

    try:
        stream = client.api.build(
            fileobj=context,
            custom_context=True,
            tag=request.tag,
            buildargs=request.build_args,
            network_mode=request.network,
            nocache=request.no_cache,
            rm=True,
            decode=True,
        )
        return legacy_result(stream, request, progress)
    except docker.errors.APIError as exc:
        raise MlgitError(f"docker build of {request.dockerfile} failed: {exc.explanation}", request.hint) from None


def legacy_result(stream: Iterable[dict[str, Any]], request: BuildRequest, progress: Progress) -> str:
    """The image ID from the legacy builder's JSON stream, or an MlgitError for its failing step."""
    step, step_lines, image_id = "", [], None
    for chunk in stream:
        if "error" in chunk:
            message = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            raise MlgitError(
                f"docker build of {request.dockerfile} failed at {step or 'the start'}",
                request.hint,
                problems=[*step_lines[-STEP_OUTPUT_LINES:], message.strip()],
            )
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
        for line in chunk.get("stream", "").splitlines():
            progress(line)
            if line.startswith("Step "):
                step, step_lines = line, []
            elif line.strip() and not line.startswith(" ---> "):
                step_lines.append(line)
    if image_id is None:
        raise MlgitError(f"docker build of {request.dockerfile} ended without an image ID", request.hint)
    return image_id
