"""Run a model over every input file of a location and write one output per input (docs/batch.md).

Resumable by one rule: an input whose outputs are all present is done and skipped. Outputs are written
atomically (storage.py), the mask before the .npz, so a run stopped at any moment leaves no output that looks
finished and is not. Rows of different files are stacked into one onnxruntime run up to the model's
batching.max_batch_size (only when batching is enabled: that is the author's word that rows are independent)
and split back per file; a file with more rows runs in slices of that size. A file that cannot be used is
reported by name and the run goes on; a run that fails as a whole is retried file by file, so one bad file
never takes its batch-mates down with it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelLoadError, NotFound, RepositoryError, ServingError
from ..metrics import ServingMetrics
from ..model import OnnxModel
from ..model_settings import ModelSettings
from ..repository import ModelRepository, read_settings
from .adapters import InputReader, encode_mask, encode_outputs, output_names
from .errors import BadFile, BatchError
from .progress import Progress
from .storage import IO_THREADS, Storage, open_storage, unsafe_name

# Files read and decoded ahead of the model, and outputs waiting to be written: enough to keep a batch full
# while the network answers, few enough to bound memory.
READ_AHEAD = 64


@dataclass(frozen=True)
class Shard:
    """This worker's share of the inputs: of the sorted names, every `count`-th from `index` on."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, slash, count = text.partition("/")
        if not (slash and index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
            raise ValueError(f"shard {text!r}: write INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/4")
        return cls(int(index), int(count))

    def pick(self, names: list[str]) -> list[str]:
        return names[self.index :: self.count]


@dataclass
class Summary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    ignored: int = 0  # files that are no input of this model (other suffixes, image formats the adapter omits)
    rows: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"{self.done} done, {self.skipped} skipped (outputs present), {self.failed} failed; "
            f"{self.rows} rows in {self.seconds:.1f} s ({self.rows_per_second:.0f} rows/s)"
            + (f"; {self.ignored} other file(s) ignored" if self.ignored else "")
        )


@dataclass(frozen=True)
class LoadedModel:
    model: OnnxModel
    settings: ModelSettings

    @property
    def stacks_rows(self) -> bool:
        """Rows of several files may share a run: the author enabled batching and every tensor has a batch axis."""
        return self.settings.batching.enabled and self.model.signature.batchable


def load_model(repository: Path, name: str | None = None) -> LoadedModel:
    """The latest version of model `name` (None: the repository's only model), loaded as the server loads it."""
    found = ModelRepository(repository, ServingMetrics())
    try:
        found.discover()
    except RepositoryError as exc:
        raise BatchError(str(exc)) from None
    names = sorted({mv.name for mv in found.all()})
    if name is None and len(names) != 1:
        problems = "".join(f"; {problem}" for problem in found.problems)
        raise BatchError(f"the model repository {repository} holds models {names}{problems}", "name one")
    try:
        version = found.get(name or names[0])
        settings = read_settings(repository / version.name)
    except NotFound as exc:
        raise BatchError(exc.message) from None
    except ModelLoadError as exc:
        raise BatchError(str(exc)) from None
    model = OnnxModel(version.name, version.version, version.path, settings)
    try:
        asyncio.run(model.load())
    except ModelLoadError as exc:
        asyncio.run(model.unload())
        raise BatchError(str(exc)) from None
    return LoadedModel(model, settings)


@dataclass(eq=False)
class _File:
    name: str
    kind: str
    outputs: list[str]
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    rows: int = 0
    pending: int = 0  # slices not yet computed
    results: list[tuple[int, dict[str, np.ndarray]]] = field(default_factory=list)  # (first row, outputs)
    failed: bool = False


@dataclass
class _Slice:
    file: _File
    start: int
    stop: int

    def inputs(self) -> dict[str, np.ndarray]:
        whole = self.start == 0 and self.stop == self.file.rows
        return self.file.inputs if whole else {k: v[self.start : self.stop] for k, v in self.file.inputs.items()}


class BatchRun:
    def __init__(self, loaded: LoadedModel, source: Storage, destination: Storage, progress: Progress) -> None:
        if source.contains(destination):
            raise BatchError(
                f"the output location {destination.describe()} is inside the input location {source.describe()}: "
                "its outputs would be read as inputs",
                "write the outputs somewhere else",
            )
        self.model = loaded.model
        self.adapter = loaded.settings.adapter
        self.max_rows = loaded.settings.batching.max_batch_size if loaded.stacks_rows else None
        self.reader = InputReader(loaded.model.signature, self.adapter)
        self.source, self.destination, self.progress = source, destination, progress
        self.output_names = list(loaded.model.signature.outputs)
        self.summary = Summary()
        self._groups: dict[tuple[object, ...], list[_Slice]] = {}
        self._writes: deque[tuple[_File, Future[None]]] = deque()

    # --- choosing the files -------------------------------------------------------------------------

    def plan(self, shard: Shard) -> list[_File]:
        """This shard's inputs that are not done yet; the others are counted as skipped or failed."""
        files, claimed, unsafe = [], {}, {}
        mask = self.adapter is not None and self.adapter.output is not None
        for name in sorted(self.source.list()):
            kind = self.reader.kind(name)
            problem = unsafe_name(name)
            if problem is not None:  # its outputs would be written outside the output location
                unsafe[name] = problem
                files.append(_File(name, kind or "", []))
            elif kind is not None:
                files.append(_File(name, kind, output_names(name, kind, mask)))
            else:
                self.summary.ignored += 1
        mine = set(shard.pick([f.name for f in files]))
        todo = []
        existing = set(self.destination.list())
        for file in files:
            clash = next((claimed[o] for o in file.outputs if o in claimed), None)
            claimed.update(dict.fromkeys(file.outputs, file.name))
            if file.name not in mine:
                continue
            if file.name in unsafe:
                self._fail(file, unsafe[file.name])
            elif clash is not None:
                self._fail(file, f"its output {file.outputs[0]} is also {clash}'s: rename one of them")
            elif all(o in existing for o in file.outputs):
                self.summary.skipped += 1
            else:
                todo.append(file)
        return todo

    # --- running --------------------------------------------------------------------------------------

    def run(self, shard: Shard) -> Summary:
        started = time.perf_counter()
        self.destination.remove_stale_temporaries()
        todo = self.plan(shard)
        self.progress.start(len(todo), self.summary)
        with ThreadPoolExecutor(IO_THREADS, thread_name_prefix="batch-io") as pool:
            for file, error in self._read_ahead(pool, todo):
                if error is not None:
                    self._fail(file, error)
                else:
                    self._add(file, pool)
                self._collect_writes(block=len(self._writes) > READ_AHEAD)
            for key in list(self._groups):
                self._flush(key, pool)
            while self._writes:
                self._collect_writes(block=True)
        self.summary.seconds = time.perf_counter() - started
        self.progress.finish()
        return self.summary

    def _read_ahead(self, pool: ThreadPoolExecutor, todo: list[_File]) -> Iterator[tuple[_File, str | None]]:
        """Each file with its inputs read (or why they cannot be), in order, READ_AHEAD files in flight."""
        queue: deque[tuple[_File, Future[dict[str, np.ndarray]]]] = deque()
        upcoming = iter(todo)
        for file in upcoming:
            queue.append((file, pool.submit(self._read, file)))
            if len(queue) >= READ_AHEAD:
                break
        while queue:
            file, future = queue.popleft()
            for following in upcoming:
                queue.append((following, pool.submit(self._read, following)))
                break
            try:
                file.inputs = future.result()
            except BadFile as exc:
                yield file, str(exc)
                continue
            except BatchError:
                raise
            except Exception as exc:  # a read that failed (OSError, botocore's errors): this file only
                yield file, f"cannot read it: {exc}"
                continue
            yield file, None

    def _read(self, file: _File) -> dict[str, np.ndarray]:
        return self.reader.read(file.kind, self.source.read(file.name))

    def _add(self, file: _File, pool: ThreadPoolExecutor) -> None:
        if self.max_rows is None:  # no stacking: the file is one run, whatever its first dimension
            first = next(iter(file.inputs.values()))
            file.rows, file.pending = first.shape[0] if first.ndim else 1, 1
            self._run([_Slice(file, 0, file.rows)], pool, whole=True)
            return
        rows = {name: array.shape[0] for name, array in file.inputs.items()}
        if len(set(rows.values())) > 1:
            self._fail(file, f"its inputs have different numbers of rows (first dimension): {rows}")
            return
        file.rows = next(iter(rows.values()))
        key = tuple((name, a.shape[1:], a.dtype.str) for name, a in sorted(file.inputs.items()))
        # The first slice tops up the open batch of files like this one, the rest are full batches of their own.
        room = self.max_rows - sum(s.stop - s.start for s in self._groups.get(key, []))
        bounds = [0, *range(min(room, file.rows), file.rows, self.max_rows), file.rows]
        pieces = [_Slice(file, start, stop) for start, stop in itertools.pairwise(bounds) if stop > start]
        pieces = pieces or [_Slice(file, 0, 0)]  # no rows: still one run, so the file gets its (empty) outputs
        file.pending = len(pieces)  # set before any run: a flush below must not find the file complete early
        for piece in pieces:
            group = self._groups.setdefault(key, [])
            group.append(piece)
            if sum(s.stop - s.start for s in group) >= self.max_rows:
                self._flush(key, pool)

    def _flush(self, key: tuple[object, ...], pool: ThreadPoolExecutor) -> None:
        group = self._groups.pop(key, [])
        if group:
            self._run(group, pool, whole=False)

    def _run(self, pieces: list[_Slice], pool: ThreadPoolExecutor, *, whole: bool) -> None:
        """One onnxruntime run over `pieces`; when it fails and holds several, each runs alone to find the culprit."""
        pieces = [p for p in pieces if not p.file.failed]
        if not pieces:
            return
        try:
            # A whole file alone: its outputs are its own, whatever their shape.
            parts = [self._infer(pieces[0].file.inputs)] if whole else self._split(pieces, self._infer(_stack(pieces)))
        except (ServingError, BadFile) as exc:
            if len(pieces) > 1:
                for piece in pieces:
                    self._run([piece], pool, whole=False)
                return
            self._fail(pieces[0].file, exc.message if isinstance(exc, ServingError) else str(exc))
            return
        for piece, part in zip(pieces, parts, strict=True):
            file = piece.file
            file.results.append((piece.start, part))
            file.pending -= 1
            if file.pending == 0 and not file.failed:
                file.inputs = {}
                self._writes.append((file, pool.submit(self._write, file)))

    def _infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs, _ = self.model.run(inputs, self.output_names)
        return dict(zip(self.output_names, outputs, strict=True))

    def _split(self, pieces: list[_Slice], outputs: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
        total = sum(p.stop - p.start for p in pieces)
        if len(pieces) == 1 and pieces[0].stop - pieces[0].start == pieces[0].file.rows:
            return [outputs]  # a whole file alone: its outputs are its own, whatever their shape
        wrong = {name: a.shape for name, a in outputs.items() if not a.shape or a.shape[0] != total}
        if wrong:
            raise BadFile(
                f"the model's outputs {wrong} do not have one row per input row ({total}); rows cannot be split "
                "back per file: set serving.batching.enabled: false so each file runs whole"
            )
        parts, start = [], 0
        for piece in pieces:
            stop = start + piece.stop - piece.start
            parts.append({name: a[start:stop] for name, a in outputs.items()})
            start = stop
        return parts

    # --- writing --------------------------------------------------------------------------------------

    def _write(self, file: _File) -> None:
        ordered = [part for _, part in sorted(file.results, key=lambda item: item[0])]
        outputs = ordered[0] if len(ordered) == 1 else {k: np.concatenate([p[k] for p in ordered]) for k in ordered[0]}
        file.results = []
        if len(file.outputs) > 1:  # the mask first: the .npz, written last, marks the file done
            assert self.adapter is not None and self.adapter.output is not None
            self.destination.write(file.outputs[1], encode_mask(outputs[self.adapter.output.name][0], self.adapter))
        self.destination.write(file.outputs[0], encode_outputs(outputs))

    def _collect_writes(self, *, block: bool) -> None:
        while self._writes and (block or self._writes[0][1].done()):
            file, future = self._writes.popleft()
            block = False
            try:
                future.result()
            except Exception as exc:  # OSError, botocore's errors: this file's output only
                self._fail(file, f"cannot write its output: {exc}")
                continue
            self.summary.done += 1
            self.summary.rows += file.rows
            self.progress.advance(self.summary)

    def _fail(self, file: _File, reason: str) -> None:
        if file.failed:
            return
        file.failed, file.inputs, file.results = True, {}, []
        self.summary.failed += 1
        self.summary.failures.append((file.name, reason))
        self.progress.report(f"failed: {file.name}: {reason}")
        self.progress.advance(self.summary)


def _stack(pieces: list[_Slice]) -> dict[str, np.ndarray]:
    if len(pieces) == 1:
        return pieces[0].inputs()
    parts = [p.inputs() for p in pieces]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def run_batch(
    repository: Path,
    source: str,
    destination: str,
    *,
    model: str | None = None,
    shard: Shard = Shard(),
    report: Callable[[str], None] | None = None,
) -> Summary:
    """Run model `model` (None: the repository's only one) of a runtime model repository over this shard of the
    inputs at `source` (a folder or s3://bucket/prefix), writing to `destination`. BatchError: the run could not
    go on; a file that cannot be used is in the summary's failures (and reported as it happens)."""
    inputs, outputs = open_storage(source, output=False), open_storage(destination, output=True)
    loaded = load_model(repository, model)
    try:
        return BatchRun(loaded, inputs, outputs, Progress.for_stderr(report)).run(shard)
    finally:
        asyncio.run(loaded.model.unload())
