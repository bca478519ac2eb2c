"""The package's layout holds: no import circles, and the folders depend on each other one way.

Imports inside functions count too: a lazy import is still a dependency (it only moves the cost).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "casabook").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = module.split(".")
        if MODULES[module].name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join(package + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for name in _imported(module, node):
                    while name not in MODULES and "." in name:
                        name = name.rsplit(".", 1)[0]
                    # A module importing its own package's __init__ is not a dependency between modules.
                    if name in MODULES and name != module and not module.startswith(name + "."):
                        deps.add(name)
        graph[module] = deps
    return graph


GRAPH = _graph()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each one import circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
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


def _area(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_the_graph_sees_the_packages_modules():
    assert {"casabook.cli", "casabook.model", "casabook.hub.caps", "casabook.validation.matrix"} <= set(GRAPH)
    assert "casabook.model" in GRAPH["casabook.check"]


def test_no_module_imports_in_a_circle():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_two_folders_depend_on_each_other():
    edges = {(_area(a), _area(b)) for a, deps in GRAPH.items() for b in deps if _area(a) != _area(b)}
    assert sorted((a, b) for a, b in edges if (b, a) in edges) == []


# Who may not import whom: the hub runs on a facility without the book or the validation matrix,
# and only the command line and the test support sit above everything.
FORBIDDEN = [
    pytest.param("casabook.hub", {"casabook.book", "casabook.validation", "casabook.rehearsal", "casabook.up",
                                  "casabook.cli", "casabook.testing"}, id="hub-below-book-validation-rehearsal"),
    pytest.param("casabook.book", {"casabook.hub", "casabook.validation", "casabook.rehearsal", "casabook.up",
                                   "casabook.cli", "casabook.testing"}, id="book-below-hub-and-validation"),
    pytest.param("casabook.model", {"casabook.check", "casabook.links", "casabook.book", "casabook.hub",
                                    "casabook.validation", "casabook.cli"}, id="model-is-the-bottom"),
    pytest.param("casabook.rehearsal", {"casabook.book", "casabook.validation", "casabook.cli", "casabook.testing"},
                 id="rehearsal-above-hub-only"),
]


@pytest.mark.parametrize(("area", "forbidden"), FORBIDDEN)
def test_lower_folders_never_import_higher_ones(area, forbidden):
    offending = sorted(f"{a} -> {b}" for a, deps in GRAPH.items() if _area(a) == area
                       for b in deps if _area(b) in forbidden)
    assert offending == []


def test_only_the_test_support_and_the_command_line_are_imported_by_nobody_in_the_package():
    imported_by_package = {b for a, deps in GRAPH.items() if _area(a) != "casabook.testing" for b in deps}
    assert not any(_area(m) == "casabook.testing" for m in imported_by_package)
    assert "casabook.cli" not in imported_by_package
