"""Round-trip YAML: read with positions for error messages, write back keeping the user's comments."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, StreamMark, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.scanner import RoundTripScanner

from mlgit.errors import Location, MlgitError

# Bounds that make a hostile or mistaken file fail at once instead of running for minutes: real
# mlgit.yaml files are 1-5 KiB and 6 levels deep, and ruamel parses dense YAML at only 20-50 KiB/s.
MAX_YAML_BYTES = 32 * 1024
MAX_YAML_DEPTH = 32


class _AliasRefused(MarkedYAMLError):
    pass


class _TooDeep(MarkedYAMLError):
    pass


class _FlowDepthScanner(RoundTripScanner):
    """Stops at the bracket past the depth bound: the scanner keeps one pending key per open bracket and
    re-checks all of them on every token, so `[[[[...` costs seconds before the composer's bound acts."""

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: Any) -> None:
        if len(self.flow_context) >= MAX_YAML_DEPTH:
            raise _TooDeep(None, None, "too deep", self.reader.get_mark())
        super().fetch_flow_collection_start(TokenClass, to_push)


class _NoAliasComposer(Composer):
    """Refuses `*alias` (and so `<<: *alias` merges): a 2 KB file of nested aliases expands to gigabytes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.parser.check_event(AliasEvent):
            event = self.parser.peek_event()
            raise _AliasRefused(None, None, f"alias *{event.anchor}", event.start_mark)
        return super().compose_node(parent, index)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Composer = _NoAliasComposer
    yaml.Scanner = _FlowDepthScanner
    yaml.max_depth = MAX_YAML_DEPTH
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def _location(path: Path, mark: StreamMark | None) -> Location:
    return Location(path, mark.line + 1, mark.column + 1) if mark else Location(path)


def _read_bounded(path: Path) -> str:
    """The file's text, refusing it before reading more than MAX_YAML_BYTES (also for /dev/zero or a FIFO)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise MlgitError(f"{path} not found", "run `mlgit init` to create a model repository") from None
    except OSError as exc:
        raise MlgitError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_YAML_BYTES:
        raise MlgitError(
            f"the file is larger than {MAX_YAML_BYTES // 1024} KiB, the most mlgit reads",
            "is this the right file? A real mlgit.yaml is a few KiB",
            location=Location(path),
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MlgitError(f"cannot read {path}: {exc}") from None


def read_yaml(path: Path) -> Any:
    """Parse `path` round-trip; syntax errors, duplicate keys, aliases, size and depth past the bounds
    become MlgitErrors at file:line:col."""
    text = _read_bounded(path)
    try:
        return _yaml().load(text)
    except DuplicateKeyError as exc:
        key = str(exc.problem).split('"')[1] if '"' in str(exc.problem) else "a key"
        raise MlgitError(
            f"duplicate key {key!r}",
            "each key may appear once per mapping; merge or rename the duplicates",
            location=_location(path, exc.problem_mark),
        ) from None
    except _AliasRefused as exc:
        raise MlgitError(
            f"YAML aliases are not supported ({exc.problem})",
            "write the value out in full instead of `*name` or `<<: *name`",
            location=_location(path, exc.problem_mark),
        ) from None
    except (MaxDepthExceededError, _TooDeep) as exc:
        raise MlgitError(
            f"nested more than {MAX_YAML_DEPTH} levels deep",
            "mlgit.yaml needs a few levels; check the brackets and indentation here",
            location=_location(path, exc.problem_mark),
        ) from None
    except MarkedYAMLError as exc:
        problem = " ".join(filter(None, [exc.context, exc.problem]))
        raise MlgitError(
            f"YAML syntax error: {problem}",
            "check the indentation and quoting around this line",
            location=_location(path, exc.problem_mark or exc.context_mark),
        ) from None
    except YAMLError as exc:  # e.g. a NUL character: errors without a position
        raise MlgitError(f"YAML error: {exc}", location=Location(path)) from None
    except (ValueError, TypeError) as exc:  # a tagged value the constructor cannot build (!!omap, 5000 digits)
        raise MlgitError(f"unreadable value: {exc}", location=Location(path)) from None


def dump_yaml(data: Any) -> str:
    """Serialise round-trip data (comments and key order kept)."""
    buf = io.StringIO()
    _yaml().dump(data, buf)
    return buf.getvalue()


def load_documents(text: str) -> list[Any]:
    """The non-empty documents of multi-document YAML `text` (rendered manifests, mlgit's own), round-trip."""
    return [doc for doc in _yaml().load_all(text) if doc]


def dump_documents(docs: Iterable[Any]) -> str:
    """Round-trip documents as one multi-document text, `---` between them."""
    return "---\n".join(dump_yaml(doc) for doc in docs)


def position(doc: Any, loc: tuple[str | int, ...]) -> tuple[int, int] | None:
    """1-based (line, column) of the deepest node of `doc` along `loc` that exists."""
    node, found = doc, None
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            mark = node.lc.key(key)
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            mark = node.lc.item(key)
        else:
            break
        if mark is None:  # tagged collections (e.g. !!omap) keep no positions
            break
        found = (mark[0] + 1, mark[1] + 1)
        node = node[key]
    if found is None and isinstance(doc, CommentedMap) and doc.lc.line is not None:
        found = (doc.lc.line + 1, doc.lc.col + 1)
    return found
