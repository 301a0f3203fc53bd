"""What a GitLab project needs, as the generated .gitlab-ci.yml header and the model repository's README
say it: every variable the job templates and the mlgit CLI read from the environment, every job."""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlgit.scaffold import scaffold_text
from tests.conftest import EXAMPLES, REPO_ROOT
from tests.pipelines.support import jobs, load_pipeline

Repo = Callable[[str], Path]
CLI = REPO_ROOT / "cli" / "mlgit"
# The job templates, where `$VAR` / `${VAR...}` is a read; the header is prose about them.
JOB_TEMPLATES = [
    *sorted((REPO_ROOT / "pipelines" / "jobs").glob("*.j2")),
    REPO_ROOT / "pipelines" / "templates" / "model-pipeline.yml.j2",
    *sorted((REPO_ROOT / "pipelines").glob("gitlab-ci.*.yml.j2")),
]
VARIABLE = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b|\bKUBECONFIG\b")
HEADER_CASES = ["linear-default", "linear-custom", "linear-prod-only", "linear-canary", "iris-classifier-component"]


# --- which variables the CLI reads: its environment lookups, resolved statically --------------------


def _is_environ(node: ast.expr) -> bool:
    """os.environ, or a mapping parameter named `environ` (how mlgit passes the environment around)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return None


class _Scope:
    """Names bound to literals in a module or function: assignments, and loops over literal tuples."""

    def __init__(self, tree: ast.AST, outer: dict[str, list[Any]]) -> None:
        self.values: dict[str, list[Any]] = dict(outer)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                value = _literal(node.value)
                if value is not None:
                    self.values[node.targets[0].id] = [value]
        for node in ast.walk(tree):
            if isinstance(node, (ast.For, ast.comprehension)):
                self._bind(node.target, self._items(node.iter))

    def _items(self, node: ast.expr) -> list[Any] | None:
        if isinstance(node, ast.Name) and node.id in self.values:
            return [item for value in self.values[node.id] for item in value]
        value = _literal(node)
        return list(value) if isinstance(value, (tuple, list)) else None

    def _bind(self, target: ast.expr, items: list[Any] | None) -> None:
        if items is None:
            return
        if isinstance(target, ast.Name):
            self.values[target.id] = items
        elif isinstance(target, ast.Tuple):
            for index, element in enumerate(target.elts):
                self._bind(element, [item[index] for item in items])

    def strings(self, node: ast.expr) -> set[str] | None:
        """Every string `node` can be, or None when it cannot be told from the source."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.Name) and node.id in self.values:
            values = self.values[node.id]
            return set(values) if all(isinstance(v, str) for v in values) else None
        if isinstance(node, ast.JoinedStr):
            parts = [self.strings(v.value if isinstance(v, ast.FormattedValue) else v) for v in node.values]
            if any(p is None for p in parts):
                return None
            return {"".join(combination) for combination in itertools.product(*parts)}  # type: ignore[arg-type]
        return None


def _own_nodes(root: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a module or function, without those of the functions defined inside it."""
    stack = list(ast.iter_child_nodes(root))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            stack.extend(ast.iter_child_nodes(node))


def _lookups(root: ast.AST) -> Iterator[ast.expr]:
    """The key of every environment lookup: environ.get(K), os.getenv(K), environ[K], K in environ."""
    for node in _own_nodes(root):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            if (node.func.attr == "get" and _is_environ(node.func.value)) or (
                node.func.attr == "getenv" and isinstance(node.func.value, ast.Name) and node.func.value.id == "os"
            ):
                yield node.args[0]
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value):
            yield node.slice
        elif (
            isinstance(node, ast.Compare)
            and isinstance(node.ops[0], (ast.In, ast.NotIn))
            and _is_environ(node.comparators[0])
        ):
            yield node.left


def cli_reads() -> tuple[set[str], list[str]]:
    """The variables cli/mlgit reads, and the lookups whose key cannot be told from the source."""
    found: set[str] = set()
    unknown: list[str] = []
    for path in sorted(CLI.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = _Scope(ast.Module(body=[n for n in tree.body if isinstance(n, ast.Assign)], type_ignores=[]), {})
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for root, scope in [(tree, module), *((f, _Scope(f, module.values)) for f in functions)]:
            for key in _lookups(root):
                names = scope.strings(key)
                if names is None:
                    unknown.append(f"{path.relative_to(REPO_ROOT)}:{key.lineno}: {ast.unparse(key)}")
                else:
                    found |= names
    return found, sorted(set(unknown))


def template_reads() -> set[str]:
    names = set()
    for path in JOB_TEMPLATES:
        if path.name != "header.yml.j2":
            names |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", path.read_text(encoding="utf-8")))
    return names


def header(repo: Path) -> str:
    """The leading comment block of the repository's .gitlab-ci.yml."""
    lines = (repo / ".gitlab-ci.yml").read_text(encoding="utf-8").splitlines()
    return "\n".join(itertools.takewhile(lambda line: line.startswith("#"), lines))


# --- the tests -----------------------------------------------------------------------------------------


def test_the_scan_finds_what_the_cli_reads() -> None:
    """Guards the scanner itself: lookups of each shape it resolves, and none it cannot."""
    found, unknown = cli_reads()
    assert unknown == [], "environment lookups whose variable cannot be told from the source"
    # constants, tuples iterated, f-strings over a loop, os.environ and an `environ` parameter
    expected = {"MLGIT_KUBECTL", "GITLAB_TOKEN", "CI_JOB_URL", "GIT_COMMITTER_EMAIL", "KUBECONFIG", "MLGIT_IMAGE"}
    assert expected <= found
    assert {"MLGIT_GITLAB_TOKEN", "MLGIT_WAIVER_MAX_DAYS", "MLGIT_POLICY_DIRS", "CI_REGISTRY_USER"} <= found
    assert {
        "MLGIT_POLICY_ALLOW_WARN",
        "MLGIT_ALLOWED_REGISTRIES",
        "MLGIT_ALLOWED_ISSUERS",
        "MLGIT_ALLOWED_DOMAINS",
    } <= found
    assert {"CI_PIPELINE_SOURCE", "MLGIT_IMAGE_REPOSITORY", "CI_ENVIRONMENT_SLUG"} <= template_reads()


@pytest.mark.parametrize("case", HEADER_CASES)
def test_header_names_every_variable_the_jobs_and_the_cli_read(case: str, pipeline_repo: Repo) -> None:
    text = header(pipeline_repo(case))
    named = set(VARIABLE.findall(text))
    found, _ = cli_reads()
    assert sorted(template_reads() - named) == [], "read by the job templates, not named in the header"
    assert sorted(found - named) == [], "read by the mlgit CLI, not named in the header"


@pytest.mark.parametrize("case", HEADER_CASES)
def test_header_names_every_job_and_every_setting(case: str, pipeline_repo: Repo) -> None:
    repo = pipeline_repo(case)
    text = header(repo)
    words = set(re.findall(r"[\w-]+", text))
    assert sorted(set(jobs(load_pipeline(repo))) - words) == [], "jobs the day-to-day flow does not name"
    for setting in ("GitLab agent", "ci_access", "kube_context", "Protected branches", "Protected environments",
                    "project access token", "write_repository", "DOCKER_AUTH_CONFIG"):  # fmt: skip
        assert setting in text


def test_the_flow_follows_the_promotion_order(pipeline_repo: Repo) -> None:
    text = header(pipeline_repo("linear-custom"))  # dev -> qa -> prod, dev deploys by itself
    flow = [line.split()[1] for line in text.splitlines() if re.match(r"#   (deploy|promote-to)-", line)]
    assert flow == ["deploy-dev", "promote-to-qa", "deploy-qa", "promote-to-prod", "deploy-prod"]
    assert re.search(r"#   deploy-dev +\(automatic\)", text) and re.search(r"#   deploy-prod +\(button\)", text)
    assert "ml/agents:dev" in text and "kube_context not set" in text  # qa names no context


@pytest.mark.parametrize("case", ["linear-default", "iris-classifier-component"])
def test_the_pipeline_writes_the_clis_defaults_of_the_platform_settings(case: str, pipeline_repo: Repo) -> None:
    """What the generated pipeline sets (and a group CI/CD variable overrides) is what the CLI assumes
    without it: the platform's guard rails, never lifted by the file itself (component mode: its inputs)."""
    from mlgit.policy.settings import platform_settings

    variables = load_pipeline(pipeline_repo(case))["variables"]
    assert {"MLGIT_WAIVER_MAX_DAYS", "MLGIT_POLICY_ALLOW_WARN"} <= set(variables)
    written, default = platform_settings({k: str(v) for k, v in variables.items()}), platform_settings({})
    assert (written.waiver_max_days, written.allow_warn) == (default.waiver_max_days, default.allow_warn)
    assert written.allowed_registries is written.allowed_issuers is written.allowed_domains is None


def _project_and_platform_variables(text: str) -> set[str]:
    """The variables the header says the project or the platform team sets."""
    section = text[text.index("#   the project") : text.index("#   this pipeline")]
    return set(VARIABLE.findall(section))


def test_readme_names_what_the_project_sets_and_the_flow(model_repo: Path) -> None:
    from mlgit import render
    from mlgit.config.load import load_project

    render.render(load_project(model_repo))
    readme = (model_repo / "README.md").read_text(encoding="utf-8")
    wanted = _project_and_platform_variables(header(model_repo))
    assert {"MLGIT_GITLAB_TOKEN", "MLGIT_REGISTRY_USER", "MLGIT_WAIVER_MAX_DAYS", "MLGIT_POLICY_ALLOW_WARN"} <= wanted
    assert {"MLGIT_ALLOWED_REGISTRIES", "MLGIT_ALLOWED_ISSUERS", "MLGIT_ALLOWED_DOMAINS"} <= wanted
    assert sorted(v for v in wanted if v not in readme) == []
    for text in ("CI_REGISTRY_USER", "DOCKER_AUTH_CONFIG", "GitLab agent", "kube_context", "Protected environments",
                 "project access token", "`deploy-dev`", "`promote-to-staging`", "`deploy-staging`",
                 "`promote-to-prod`", "`deploy-prod`", "`review`", "`stop-review`", "`destroy-<env>`"):  # fmt: skip
        assert text in readme


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_examples_readme_is_what_init_writes(example: str) -> None:
    from mlgit.config.load import parse_config

    config, _ = parse_config(REPO_ROOT / "examples" / example / "mlgit.yaml")
    expected = scaffold_text("README.md.j2", config, config.name)
    assert (REPO_ROOT / "examples" / example / "README.md").read_text(encoding="utf-8") == expected
