"""Which module of the package may import which, read from the source with `ast` (nothing is
imported): no import cycles at module level, envs/ and causal/ know nothing of the learners or
the loop, and runtime/ nothing of the analysis or the command line."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "c3rl_jax"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _lazy_homes() -> dict[str, str]:
    """c3rl_jax/__init__.py's `_HOMES`: the module each public name of `c3rl_jax` loads from."""
    for node in ast.parse(SOURCES["c3rl_jax"].read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "_HOMES":
            return ast.literal_eval(node.value)
    raise AssertionError("c3rl_jax/__init__.py has no _HOMES table")


HOMES = _lazy_homes()


class _Imports(ast.NodeVisitor):
    """The c3rl_jax modules one module imports, each with whether the import runs when the
    module is imported (False inside a function or under `if TYPE_CHECKING:`)."""

    def __init__(self):
        self.found: list[tuple[str, bool]] = []
        self.unresolved: list[str] = []
        self.deferred = 0

    def _add(self, name: str, *, submodule: str | None = None):
        if submodule is not None and f"{name}.{submodule}" in SOURCES:
            name = f"{name}.{submodule}"
        elif submodule is not None and name == "c3rl_jax" and submodule in HOMES:
            name = HOMES[submodule]
        if name in SOURCES:
            self.found.append((name, not self.deferred))
        else:
            self.unresolved.append(name if submodule is None else f"{name}.{submodule}")

    def visit_Import(self, node: ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == "c3rl_jax":
                self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom):
        if node.level:  # the package imports by absolute names only, which this graph reads
            self.unresolved.append(f"{'.' * node.level}{node.module or ''} (relative)")
        elif node.module.split(".")[0] == "c3rl_jax":
            for alias in node.names:
                self._add(node.module, submodule=alias.name)

    def _visit_deferred(self, node: ast.AST):
        self.deferred += 1
        self.generic_visit(node)
        self.deferred -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _visit_deferred

    def visit_If(self, node: ast.If):
        if "TYPE_CHECKING" in ast.unparse(node.test):
            self._visit_deferred(node)
        else:
            self.generic_visit(node)


def _graph() -> dict[str, list[tuple[str, bool]]]:
    graph, unresolved = {}, []
    for module, path in SOURCES.items():
        visitor = _Imports()
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        graph[module] = visitor.found
        unresolved += [f"{module} imports {name}" for name in visitor.unresolved]
    assert not unresolved, f"imports of no module of the package: {unresolved}"
    return graph


GRAPH = _graph()


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph `edges` as [a, b, ..., a], or None if it has none."""
    state: dict[str, str] = {}  # "open" while on the DFS path, then "done"
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def _in(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_graph_is_read():  # the rules below would pass vacuously on an empty graph
    assert "c3rl_jax.runtime.results" in SOURCES and "c3rl_jax.sharing.adaptive" in SOURCES
    assert ("c3rl_jax.rollout", True) in GRAPH["c3rl_jax.training"]
    assert ("c3rl_jax.analysis.plotting", False) in GRAPH["c3rl_jax.cli"]
    assert ("c3rl_jax.replay", True) in GRAPH["c3rl_jax.rollout"]  # from c3rl_jax import replay


def test_the_cycle_finder():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"b"}}) == ["b", "c", "b"]


def test_no_import_cycles_at_module_level():
    edges = {m: {t for t, eager in imports if eager and t != m} for m, imports in GRAPH.items()}
    cycle = _find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize(
    "importers, forbidden",
    [
        (
            ("c3rl_jax.envs", "c3rl_jax.causal"),
            (
                "c3rl_jax.learners",
                "c3rl_jax.training",
                "c3rl_jax.rollout",
                "c3rl_jax.sharing",
                "c3rl_jax.analysis",
            ),
        ),
        (("c3rl_jax.runtime",), ("c3rl_jax.analysis", "c3rl_jax.cli")),
    ],
)
def test_packages_import_nothing_of_what_they_must_not_know(importers, forbidden):
    found = [
        f"{module} imports {target}"
        for module, imports in GRAPH.items()
        if _in(module, importers)
        for target, _ in imports
        if _in(target, forbidden)
    ]
    assert not found, found
