"""The import graph of the `mlgit` and `mlgit_serving` packages: no cycle, and the runtime never imports the CLI.

Every import counts, at module level or inside a function (a lazy import still closes a loop when it
runs), except those under `if TYPE_CHECKING:`. Importing `a.b.c` also runs the `__init__` of `a` and
`a.b`, so those packages are edges too (a package importing its own submodules is not a loop).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO_ROOT

PACKAGES = {"mlgit": REPO_ROOT / "cli" / "mlgit", "mlgit_serving": REPO_ROOT / "serving_runtime" / "mlgit_serving"}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            if "_templates" in path.parts:
                continue
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Fully qualified names the module imports (`from x import y` gives x.y; the caller keeps modules)."""
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if _type_checking_only(node):
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """module -> the project's modules importing it runs (its package parents included)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        own_ancestors = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        edges = set()
        for name in _imported_names(tree, module, path.name == "__init__.py"):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                target = ".".join(parts[:i])
                if target in modules and target != module and target not in own_ancestors:
                    edges.add(target)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 80, "the modules were not found"
    loops = cycles(graph)
    assert not loops, "import cycles:\n" + "\n".join(
        " -> ".join(f"{m} (imports {sorted(graph[m] & set(loop))})" for m in loop) for loop in loops
    )


def test_the_serving_runtime_never_imports_the_cli() -> None:
    graph = import_graph()
    leaks = {m: sorted(t for t in targets if t.split(".")[0] == "mlgit") for m, targets in graph.items()}
    assert {m: t for m, t in leaks.items() if m.startswith("mlgit_serving") and t} == {}


def test_the_checker_sees_a_cycle_hidden_in_package_initialisers() -> None:
    """The shape of the loop this test was written against: a package's __init__ importing the entry point
    that imports the package's renderer, which imports a helper beside the entry point."""
    graph = {
        "mlgit.render": {"mlgit.manifests.render", "mlgit.render.files"},
        "mlgit.render.files": set(),
        "mlgit.manifests": {"mlgit.render"},
        "mlgit.manifests.render": {"mlgit.manifests", "mlgit.render.files", "mlgit.render"},
    }
    assert cycles(graph) == [["mlgit.manifests", "mlgit.manifests.render", "mlgit.render"]]
