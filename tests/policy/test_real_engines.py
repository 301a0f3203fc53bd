"""The policies give the same findings under the real engines, OPA and conftest, as under regopy.

The corpus is every input document the other policy tests evaluate: each policy's passing and failing
cases, the fixture environments (CPU and GPU) and pipeline clean and with every planted violation,
and the iris example's generated environments and pipeline, clean and planted. The documents are
written to one folder; `opa exec` and `conftest test` each read all of them in one process, started
before regopy evaluates so that they run on the other core. Measured on a loaded 2-core machine: one
document costs 0.13 s with `opa eval` and 0.18 s with `conftest test` (about 45 s for the corpus of
~140 documents), the batched runs 1.5 s and 3.8 s.

A finding is compared as (package, deny|warn, message, resource): conftest groups deny and violation
results as failures and warn results as warnings, so that is the finest grain all three engines share.
The binaries come from MLGIT_TEST_OPA and MLGIT_TEST_CONFTEST (`bash tests/policy/real-engines.sh`).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from mlgit.config.load import load_project
from mlgit.policy.engine import PolicySet
from mlgit.policy.inputs import environment_input, environment_names, pipeline_input
from mlgit.policy.metadata import rule_severity
from mlgit.resources import shipped_dir
from mlgit.scaffold import InitOptions, init_repository
from tests.policy import environments
from tests.policy.planted import PIPELINE_PLANTS, PLANTS, Plant
from tests.policy.test_cases import CASES, _document

pytestmark = pytest.mark.integration

Document = dict[str, Any]
# (package, "deny" | "warn", message, resource as sorted JSON or None)
Finding = tuple[str, str, str, str | None]
Findings = dict[str, Counter[Finding]]

# Resolved: in an editable install the folder is a symlink, and `opa exec --bundle` loads nothing
# through a symlinked root (every decision undefined); `opa eval --data` and conftest follow it.
POLICIES = shipped_dir("policies").resolve()

# conftest's rule names, as mlgit reads them (metadata._RULE): deny, violation, warn, each optionally _suffixed.
_RULE = re.compile(r"^(deny|violation|warn)(_[A-Za-z0-9]+)*$")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _finding(package: str, severity: str, item: Any) -> Finding:
    """One rule result as all engines can express it: a message string or {"msg", "resource"}."""
    if isinstance(item, dict):
        resource = item.get("resource")
        return package, severity, str(item.get("msg")), json.dumps(resource, sort_keys=True) if resource else None
    return package, severity, str(item), None


class Corpus(dict[str, Document]):
    """Input documents by file-safe name, and the names that must have findings (failing, planted)."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: set[str] = set()

    def add(self, document: Document, *parts: str, failing: bool) -> None:
        name = _SAFE.sub("_", "-".join(parts))
        assert name not in self, name
        self[name] = document
        if failing:
            self.failing.add(name)

    def planted(self, base: Document, plants: list[Plant], *parts: str) -> None:
        self.add(base, *parts, "clean", failing=False)
        for index, plant in enumerate(plants):
            document = copy.deepcopy(base)
            plant.change(document)
            self.add(document, *parts, str(index), plant.policy, failing=True)


def _fixture_corpus() -> Corpus:
    """Cases and planted violations on the hand-written documents (no kubectl needed)."""
    corpus = Corpus()
    for path in sorted(CASES.glob("*/*/*.yaml")):
        case = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        outcome = path.parent.name
        # _document: the very input test_cases evaluates (the case over a production context).
        corpus.add(_document(case), "case", path.parent.parent.name, outcome, path.stem, failing=outcome == "fail")
    corpus.planted(environments.environment("prod", "production", "cpu"), PLANTS, "fixture", "cpu")
    # As in test_corpus: the RES-002 plant gives a CPU model a GPU, a GPU model has one already.
    gpu_plants = [p for p in PLANTS if p.policy != "MLGIT-RES-002"]
    corpus.planted(environments.environment("prod", "production", "gpu"), gpu_plants, "fixture", "gpu")
    corpus.planted(environments.pipeline(), PIPELINE_PLANTS, "fixture", "pipeline")
    return corpus


def _generated_corpus(repo: Path) -> Corpus:
    """The example's rendered environments and pipeline as `mlgit policy check` builds them, clean and planted."""
    project = load_project(repo)
    image = f"{project.config.image.repository}@{environments.DIGEST}"
    corpus = Corpus()
    for env in environment_names(project, None):
        document = environment_input(project, env, image).document
        if env == "prod":
            corpus.planted(document, PLANTS, "generated", env)
        else:
            corpus.add(document, "generated", env, failing=False)
    pipeline, _ = pipeline_input(project)
    corpus.planted(pipeline.document, PIPELINE_PLANTS, "generated", "pipeline")
    return corpus


def _write(corpus: dict[str, Document], folder: Path) -> dict[str, str]:
    """Each document as <name>.json; returns file path -> document name."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, document in corpus.items():
        path = folder / f"{name}.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        files[str(path)] = name
    return files


def _start(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _output(process: subprocess.Popen[str], ok: tuple[int, ...] = (0,)) -> str:
    try:
        stdout, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode in ok, f"{str(process.args)[:200]} exited {process.returncode}: {stderr[-2000:]}"
    return stdout


def regopy_findings(policies: PolicySet, corpus: dict[str, Document]) -> Findings:
    return {
        name: Counter(
            _finding(v.policy.package, v.severity, {"msg": v.message, "resource": v.resource})
            for v in policies.evaluate(document)
        )
        for name, document in corpus.items()
    }


def _rule_results(data: Any, package: str) -> Iterator[Finding]:
    """Every deny/violation/warn result in a `data.mlgit` value, packages nested as objects."""
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        if _RULE.match(key) and isinstance(value, list):
            yield from (_finding(package, rule_severity(key), item) for item in value)
        elif isinstance(value, dict):
            yield from _rule_results(value, f"{package}.{key}")


def opa_command(opa: str, files: dict[str, str]) -> list[str]:
    """`opa exec` evaluates data.mlgit once per input file, all files in one process."""
    return [opa, "exec", "--decision", "mlgit", "--bundle", str(POLICIES), *files]


def opa_findings(output: str, files: dict[str, str], packages: set[str]) -> Findings:
    found: Findings = {}
    for entry in json.loads(output)["result"]:
        assert "error" not in entry, entry
        result = entry["result"]
        # Every policy was loaded and evaluated (an unloaded folder gives empty, agreeing results).
        assert {f"mlgit.{key}" for key in result} >= packages, entry["path"]
        found[files[entry["path"]]] = Counter(_rule_results(result, "mlgit"))
    assert found.keys() == set(files.values())
    return found


def conftest_command(conftest: str, files: dict[str, str]) -> list[str]:
    """`conftest test --all-namespaces` over all files at once (exit 1 just means failures were found)."""
    return [conftest, "test", "--all-namespaces", "--no-color", "--output", "json", "--policy", str(POLICIES), *files]


def conftest_findings(output: str, files: dict[str, str], packages: set[str]) -> Findings:
    found: Findings = {name: Counter() for name in files.values()}
    evaluated: dict[str, set[str]] = {name: set() for name in files.values()}
    for entry in json.loads(output):
        name = files[entry["filename"]]
        evaluated[name].add(entry["namespace"])
        for severity, key in (("deny", "failures"), ("warn", "warnings")):
            for result in entry.get(key) or []:
                # conftest shows `msg` and keeps every other key of a result object under `metadata`.
                item = {"msg": result["msg"], "resource": (result.get("metadata") or {}).get("resource")}
                found[name][_finding(entry["namespace"], severity, item)] += 1
        assert not entry.get("exceptions"), entry
    # One entry per file and namespace: every policy ran over every file.
    assert {name: packages - seen for name, seen in evaluated.items() if packages - seen} == {}
    return found


def _differences(expected: Findings, actual: Findings) -> dict[str, dict[str, list[Finding]]]:
    """Per document, what only regopy found and what only the other engine found."""
    differences = {}
    for name in sorted(expected.keys() | actual.keys()):
        mine, theirs = expected.get(name, Counter()), actual.get(name, Counter())
        if mine != theirs:
            differences[name] = {"regopy only": sorted(mine - theirs), "engine only": sorted(theirs - mine)}
    return differences


def _assert_same(corpus: Corpus, folder: Path, policies: PolicySet, opa: str, conftest: str) -> None:
    files = _write(corpus, folder)
    # Both engines run on the other core while regopy evaluates here: the test takes about as long
    # as the slowest of the three instead of their sum.
    opa_run, conftest_run = _start(opa_command(opa, files)), _start(conftest_command(conftest, files))
    try:
        expected = regopy_findings(policies, corpus)
    except BaseException:
        for run in (opa_run, conftest_run):
            run.kill()
            run.communicate()
        raise
    opa_output, conftest_output = _output(opa_run), _output(conftest_run, ok=(0, 1))
    # Not nothing compared with nothing: what must fail does (the other tests check which policy catches it).
    assert sorted(n for n in corpus.failing if not expected[n]) == []
    packages = {p.package for p in policies.policies}
    report = _report("OPA", _differences(expected, opa_findings(opa_output, files, packages)), folder)
    report += _report("conftest", _differences(expected, conftest_findings(conftest_output, files, packages)), folder)
    if report:
        pytest.fail("\n".join(report), pytrace=False)


def _report(engine: str, differences: dict[str, dict[str, list[Finding]]], folder: Path) -> list[str]:
    """Readable lines for a disagreement; the input files stay in `folder` to rerun the engine by hand."""
    if not differences:
        return []
    lines = [f"{engine} disagrees with regopy on {len(differences)} document(s) in {folder}:"]
    for name, sides in differences.items():
        lines.append(f"  {name}.json")
        lines += [f"    {side}: {f[0]} {f[1]}: {f[2]}" for side, found in sides.items() for f in found]
    return lines


def test_fixture_corpus_same_findings(tmp_path: Path, policies: PolicySet, opa: str, conftest: str) -> None:
    _assert_same(_fixture_corpus(), tmp_path, policies, opa, conftest)


def test_generated_corpus_same_findings(
    tmp_path: Path, policies: PolicySet, opa: str, conftest: str, kubectl: str
) -> None:
    repo = init_repository(InitOptions(target=tmp_path / "iris", example="iris-classifier"))
    _assert_same(_generated_corpus(repo), tmp_path / "inputs", policies, opa, conftest)
