"""The minimal build context: what a Dockerfile reads, .dockerignore, and a tar `docker build -` accepts."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from mlgit.build.context import IgnoreRules, context_files, dockerfile_sources, write_context
from mlgit.errors import MlgitError


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_sources_cover_copy_add_json_form_continuations_and_bind_mounts(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "# syntax comment\n"
        "ARG BASE=x\nFROM ${BASE} AS build\n"
        "COPY --chown=1:1 a.txt b/ /dst/\n"
        'COPY ["c d.txt", "/dst/"]\n'
        "COPY --from=build /x /y\n"
        "ADD https://example.com/f.tgz /tmp/\n"
        "add e.tar \\\n"
        "    # a comment inside a continuation\n"
        "    /opt/\n"
        "RUN --mount=type=bind,source=pyproject.toml,target=/p --mount=type=cache,target=/c pip install\n"
        "RUN --mount=type=bind,from=build,source=/x,target=/x true\n",
        encoding="utf-8",
    )
    assert dockerfile_sources(dockerfile) == [
        (4, "a.txt"), (4, "b/"), (5, "c d.txt"), (8, "e.tar"), (11, "pyproject.toml"),
    ]  # fmt: skip


def test_unreadable_instruction_names_the_line(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM x\nCOPY 'unterminated /dst\n", encoding="utf-8")
    with pytest.raises(MlgitError) as caught:
        dockerfile_sources(dockerfile)
    assert str(caught.value.location) == f"{dockerfile}:2"


@pytest.mark.parametrize(
    ("patterns", "path", "ignored"),
    [
        ("*.pyc", "a.pyc", True),
        ("*.pyc", "pkg/a.pyc", False),  # * stays within one directory, as in Docker
        ("**/*.pyc", "pkg/sub/a.pyc", True),
        ("**/__pycache__", "pkg/__pycache__/a.cpython-311.pyc", True),
        ("build", "build/lib/x.py", True),  # a directory's contents go with it
        ("docs\n!docs/keep.md", "docs/keep.md", False),
        ("docs\n!docs/keep.md", "docs/other.md", True),
        ("/data/?.csv", "data/a.csv", True),
        ("# comment\n", "comment", False),
    ],
)
def test_dockerignore_rules(patterns: str, path: str, ignored: bool) -> None:
    assert IgnoreRules(patterns).ignored(path) is ignored


def test_context_is_only_what_the_dockerfile_reads_never_git(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "Dockerfile": "FROM x\nCOPY model/model.onnx settings.json /m/\nCOPY src /src\nCOPY *.md /docs/\n",
            "model/model.onnx": "onnx",
            "model/training-data.csv": "big",
            "settings.json": "{}",
            "src/pkg/a.py": "",
            "src/pkg/__pycache__/a.pyc": "",
            "src/.git/HEAD": "ref",
            "README.md": "",
            "notes.txt": "",
            ".git/config": "",
            ".dockerignore": "**/__pycache__\n",
        },
    )
    assert context_files(root, root / "Dockerfile") == [
        "README.md", "model/model.onnx", "settings.json", "src/pkg/a.py",
    ]  # fmt: skip


def test_missing_sources_are_left_for_docker_to_report(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"Dockerfile": "FROM x\nCOPY gone.onnx /m/\n"})
    assert context_files(root, root / "Dockerfile") == []


def test_context_tar_starts_with_a_plain_header_and_follows_symlinks(tmp_path: Path) -> None:
    data = _tree(tmp_path / "data", {"weights.onnx": "weights"})
    root = _tree(tmp_path / "repo", {"Dockerfile": "FROM x\nCOPY model.onnx /m/\n"})
    (root / "model.onnx").symlink_to(data / "weights.onnx")
    buffer = io.BytesIO()
    assert write_context(root, root / "Dockerfile", buffer) == ["model.onnx"]
    # `docker build -` recognises a tar only by the first file header within 1 KiB (no PAX block first).
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue()[:1024] + b"\0" * 1024)) as head:
        assert head.next().name == "Dockerfile"
    with tarfile.open(fileobj=buffer) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == ["Dockerfile", "model.onnx"]
        assert members["model.onnx"].isfile() and members["model.onnx"].uid == 0
        assert tar.extractfile("model.onnx").read() == b"weights"


def test_a_source_outside_the_repository_is_refused(tmp_path: Path) -> None:
    outside = _tree(tmp_path / "ext", {"secret.txt": "not yours"})
    root = _tree(tmp_path / "repo", {"Dockerfile": f"FROM x\nCOPY ../{outside.name}/secret.txt /s\n"})
    with pytest.raises(MlgitError, match="outside the model repository"):
        context_files(root, root / "Dockerfile")


def test_symlinked_folders_are_followed_once(tmp_path: Path) -> None:
    weights = _tree(tmp_path / "data", {"w.bin": "weights"})
    root = _tree(tmp_path / "repo", {"Dockerfile": "FROM x\nCOPY model/ /m/\n", "model/m.onnx": "onnx"})
    (root / "model" / "weights").symlink_to(weights, target_is_directory=True)
    (root / "model" / "loop").symlink_to(root / "model", target_is_directory=True)
    assert context_files(root, root / "Dockerfile") == ["model/m.onnx", "model/weights/w.bin"]


def test_the_context_of_a_model_with_external_data_carries_its_data_files(tmp_path: Path) -> None:
    from mlgit.scaffold import InitOptions, init_repository
    from tests.onnx_models import write_external_data_model

    model = write_external_data_model(tmp_path / "export" / "net.onnx", location="weights/net.bin")
    repo = init_repository(InitOptions(target=tmp_path / "repo", model=model))
    assert context_files(repo, repo / "Dockerfile") == [
        "model-settings.json", "model/model.onnx", "model/sample.json", "model/weights/net.bin",
    ]  # fmt: skip
