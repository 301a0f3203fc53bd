"""Round-trip YAML: read with positions for error messages, write back keeping the user's comments."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError

from mlgit.errors import Location, MlgitError


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def read_yaml(path: Path) -> Any:
    """Parse `path` round-trip; syntax errors and duplicate keys become MlgitErrors at file:line:col."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MlgitError(f"{path} not found", "run `mlgit init` to create a model repository") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MlgitError(f"cannot read {path}: {exc}") from None
    try:
        return _yaml().load(text)
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        key = str(exc.problem).split('"')[1] if '"' in str(exc.problem) else "a key"
        raise MlgitError(
            f"duplicate key {key!r}",
            "each key may appear once per mapping; merge or rename the duplicates",
            location=Location(path, mark.line + 1, mark.column + 1) if mark else Location(path),
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(filter(None, [exc.context, exc.problem]))
        raise MlgitError(
            f"YAML syntax error: {problem}",
            "check the indentation and quoting around this line",
            location=Location(path, mark.line + 1, mark.column + 1) if mark else Location(path),
        ) from None


def dump_yaml(data: Any) -> str:
    """Serialise round-trip data (comments and key order kept)."""
    buf = io.StringIO()
    _yaml().dump(data, buf)
    return buf.getvalue()


def position(doc: Any, loc: tuple[str | int, ...]) -> tuple[int, int] | None:
    """1-based (line, column) of the deepest node of `doc` along `loc` that exists."""
    node, found = doc, None
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line, col = node.lc.key(key)
            found = (line + 1, col + 1)
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            line, col = node.lc.item(key)
            found = (line + 1, col + 1)
            node = node[key]
        else:
            break
    if found is None and isinstance(doc, CommentedMap) and doc.lc.line is not None:
        found = (doc.lc.line + 1, doc.lc.col + 1)
    return found
