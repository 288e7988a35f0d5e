"""claynb's modules import each other without a cycle, function-level imports included.

A cycle hidden behind an import inside a function works until someone moves that import
to the top; then it breaks at import time, far from the change. The graph is read from
every module's source (no import runs): an edge for each ``import`` and ``from ... import``
anywhere in the file, including inside functions and ``if TYPE_CHECKING:`` blocks, to the
module named, or to the submodule when a name imported from a package is one.
"""

from __future__ import annotations

import ast
import contextlib
import gc
from collections.abc import Iterator
from pathlib import Path

import claynb

ROOT = Path(claynb.__file__).parent


def module_name(path: Path) -> str:
    parts = ["claynb", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imported(tree: ast.AST, known: set[str]) -> Iterator[str]:
    """The claynb modules a module's source imports, wherever the import statement is."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module not in known:
                continue
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            named = [name for name in submodules if name in known]
            yield from named
            if len(named) < len(submodules):  # some names are attributes of the module
                yield node.module


@contextlib.contextmanager
def collector_held() -> Iterator[None]:
    """The cycle collector held off while the modules are parsed. CPython 3.11 checks its
    recursion depth around building a tree, and a collection that runs a finaliser in the
    middle (here: an earlier test's abandoned NATS coroutines, in the same pytest worker)
    throws it off: ``SystemError: AST constructor recursion depth mismatch`` (CPython
    gh-106905), seen once in CI. Collect first, then parse with nothing collected."""
    gc.collect()
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    with collector_held():
        return {
            name: set(imported(ast.parse(path.read_text(encoding="utf-8")), known)) - {name}
            for name, path in found.items()
        }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path that starts and ends at the same module, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_graph_is_read_from_every_module() -> None:
    graph = import_graph()
    assert "claynb.pipeline._enrich" in graph and "claynb.wire._core" in graph
    # function-level imports count: the enrich pipeline reaches connect() inside a function
    assert "claynb._connect" in graph["claynb.pipeline._enrich"]
    assert "claynb.pipeline._cache" in graph["claynb.pipeline._journal"]  # from pkg import mod


def test_the_cycle_finder_finds_a_cycle() -> None:
    cycle = find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_module_imports_claynb_back_in_a_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_wire_layer_imports_nothing_above_it() -> None:
    """The wire layer speaks to Clay; it knows no frame, budget or tier."""
    above = ("claynb.pipeline", "claynb.direct", "claynb.queue", "claynb.events", "claynb.sim")
    graph = import_graph()
    wrong = {
        (name, dep)
        for name, deps in graph.items()
        if name.startswith("claynb.wire")
        for dep in deps
        if dep.startswith(above) or dep == "claynb"
    }
    assert wrong == set()
