"""The library's modules form layers: no module imports, even lazily inside a function, a module that
imports it back. The offline core reads bottom to top: networks, losses, agents, config, updates, trainer;
the experiment machinery (``ipl_core.experiments``) sits above the whole library."""

from __future__ import annotations

import ast
from pathlib import Path

import ipl_core

PACKAGE = Path(ipl_core.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every ipl_core module and the ipl_core modules it imports anywhere in its source."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ipl_core"):
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names if alias.name.startswith("ipl_core")}
        # a package's __init__ re-exports its modules; importing a module imports its parent packages
        graph[name] = {m for m in imported if m in modules and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if state.get(nxt) is None and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_modules_import_no_cycle() -> None:
    graph = {name: deps for name, deps in import_graph().items() if name != "ipl_core"}  # the facade
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def test_the_offline_core_is_layered() -> None:
    """Each layer imports only layers below it."""
    layers = ["ipl_core.nets", "ipl_core.reward_models", "ipl_core.losses", "ipl_core.agents",
              "ipl_core.config", "ipl_core.offline", "ipl_core.trainer"]
    graph = import_graph()
    for i, module in enumerate(layers):
        above = set(layers[i + 1:])
        assert not graph[module] & above, f"{module} imports {sorted(graph[module] & above)}, above it"


def test_the_library_does_not_import_the_experiments() -> None:
    """The experiment machinery sits on top: no module outside ``ipl_core.experiments`` imports it."""
    graph = import_graph()
    assert "ipl_core.experiments.run" in graph, "the experiments package moved; update this test"
    def machinery(name: str) -> bool:
        return name == "ipl_core.experiments" or name.startswith("ipl_core.experiments.")

    for module, deps in graph.items():
        if not machinery(module):
            wrong = sorted(d for d in deps if machinery(d))
            assert not wrong, f"{module} imports {wrong}, the experiment machinery"


def test_a_cycle_is_found() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
