"""The packages import only downward and never in a circle.

The layers (docs/architecture.md), bottom to top:

0. ``tools`` — catalog, search, settings, metrics, errors, stores;
1. ``agent.protocol`` and ``agent.runtime`` — the tool-call protocol and the local model;
2. ``agent.conversation``, ``agent.trajectory``, ``agent.terminal`` — the graph, the log, the chat;
3. ``evals`` and ``rl`` — peers that do not import each other;
4. ``cli``.

``evals.perf`` (benchmarks) sits outside the product: it may import anything, and nothing in
the product may import it. Every import counts — at module level, inside a function, under
``if TYPE_CHECKING:`` and ``importlib.import_module`` — because an import hidden in a
function still couples the two modules and still closes a cycle when it runs. Importing
``a.b.c`` also runs the ``__init__`` of ``a.b`` (unless the importer already sits inside it),
so that edge counts for cycles too: that is how a package ``__init__`` re-exporting a module
that reaches back into the package forms a cycle.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "tools", "evals", "rl")
TOP_MODULES = ("cli",)

# Longest matching prefix wins; ``agent`` alone is only the package's own ``__init__``, so a
# module added directly under agent/ has no layer and fails until it is placed.
LAYER_PREFIXES: dict[str, int] = {
    "tools": 0,
    "agent.protocol": 1,
    "agent.runtime": 1,
    "agent.conversation": 2,
    "agent.trajectory": 2,
    "agent.terminal": 2,
    "evals": 3,
    "rl": 3,
    "cli": 4,
}
LAYER_EXACT: dict[str, int] = {"agent": 1}
PERF = "evals.perf"
PEERS = ("evals", "rl")


@dataclass(frozen=True)
class Edge:
    """One import: ``source`` imports ``target`` at ``path:line``; ``explicit`` is False for
    the implicit import of a package ``__init__`` on the way to one of its modules."""

    source: str
    target: str
    path: str
    line: int
    explicit: bool = True

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def discover(root: Path) -> dict[str, Path]:
    """Every project module under ``root``: dotted name -> file."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    for name in TOP_MODULES:
        if (root / f"{name}.py").is_file():
            modules[name] = root / f"{name}.py"
    return modules


def layer_of(module: str) -> int | None:
    """The layer a module sits in, or None when no rule places it."""
    if module in LAYER_EXACT:
        return LAYER_EXACT[module]
    best: tuple[int, int] | None = None
    for prefix, layer in LAYER_PREFIXES.items():
        if (module == prefix or module.startswith(prefix + ".")) and (
            best is None or len(prefix) > best[0]
        ):
            best = (len(prefix), layer)
    return best[1] if best else None


def is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a project module (None for third-party)."""
    parts = name.split(".")
    if parts[0] not in (*PACKAGES, *TOP_MODULES):
        return None
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _targets(node: ast.AST, module: str, path: Path, modules: dict[str, Path]) -> list[str]:
    """The project modules one import statement or ``import_module`` call names."""
    if isinstance(node, ast.Import):
        return [t for alias in node.names if (t := _known(alias.name, modules))]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            package = module.split(".") if is_package(path) else module.split(".")[:-1]
            anchor = package[: len(package) - (node.level - 1)]
            base = ".".join([*anchor, *([node.module] if node.module else [])])
        else:
            base = node.module or ""
        found = []
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            target = sub if sub in modules else _known(base, modules)
            if target:
                found.append(target)
        return found
    if isinstance(node, ast.Call) and _calls_import_module(node) and node.args:
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return [t for t in [_known(arg.value, modules)] if t]
        if isinstance(arg, ast.JoinedStr):
            pattern = "".join(
                re.escape(v.value) if isinstance(v, ast.Constant) else r"[^.]+" for v in arg.values
            )
            return sorted(m for m in modules if re.fullmatch(pattern, m))
    return []


def _calls_import_module(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in ("import_module", "__import__")


def edges_of(root: Path) -> tuple[dict[str, Path], list[Edge]]:
    """Every import between project modules under ``root``, explicit and implicit."""
    modules = discover(root)
    edges: list[Edge] = []
    for module, path in modules.items():
        rel = str(path.relative_to(root))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=rel)):
            for target in _targets(node, module, path, modules):
                if target == module:
                    continue
                line = getattr(node, "lineno", 0)
                edges.append(Edge(module, target, rel, line))
                edges.extend(
                    Edge(module, ancestor, rel, line, explicit=False)
                    for ancestor in _ancestors(target)
                    if ancestor in modules and not is_within(module, ancestor)
                )
    return modules, edges


def _ancestors(module: str) -> Iterator[str]:
    parts = module.split(".")
    for n in range(1, len(parts)):
        yield ".".join(parts[:n])


def layering_problems(root: Path) -> list[str]:
    """Each upward import, each evals<->rl import and each product import of evals.perf."""
    modules, edges = edges_of(root)
    problems = [
        f"{modules[m].relative_to(root)} has no layer: place it in LAYER_PREFIXES"
        for m in modules
        if layer_of(m) is None
    ]
    for edge in (e for e in edges if e.explicit):
        source_perf, target_perf = is_within(edge.source, PERF), is_within(edge.target, PERF)
        if target_perf and not source_perf:
            problems.append(
                f"{edge.where()} imports {edge.target}: the product never imports {PERF}"
            )
            continue
        if source_perf:
            continue
        source_layer, target_layer = layer_of(edge.source), layer_of(edge.target)
        if source_layer is None or target_layer is None:
            continue
        if target_layer > source_layer:
            problems.append(
                f"{edge.where()} imports {edge.target} (layer {target_layer}) "
                f"from layer {source_layer}"
            )
        source_top, target_top = edge.source.split(".")[0], edge.target.split(".")[0]
        if {source_top, target_top} == set(PEERS):
            problems.append(f"{edge.where()} imports {edge.target}: evals and rl are peers")
    return problems


def import_cycles(root: Path) -> list[str]:
    """One cycle per strongly connected group of modules, each step with its file:line."""
    _, edges = edges_of(root)
    graph: dict[str, dict[str, Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, {}).setdefault(edge.target, edge)
    cycles = []
    for component in _strongly_connected(graph):
        if len(component) < 2:
            continue
        start = min(component)
        path = _cycle_through(start, component, graph)
        steps = [graph[a][b] for a, b in pairwise(path)]
        others = sorted(component - set(path))
        cycles.append(
            " -> ".join(path)
            + "  ("
            + "; ".join(f"{s.where()} imports {s.target}" for s in steps)
            + ")"
            + (f"  [also in this knot: {', '.join(others)}]" if others else "")
        )
    return cycles


def _strongly_connected(graph: dict[str, dict[str, Edge]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (the module graph is small, but recursion is not needed)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []
    nodes = sorted(set(graph) | {t for targets in graph.values() for t in targets})
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, {}))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def _cycle_through(start: str, component: set[str], graph: dict[str, dict[str, Edge]]) -> list[str]:
    """The shortest path from ``start`` back to itself inside one component (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph.get(node, {})):
                if child not in component:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return [start]


def test_every_import_points_down_a_layer() -> None:
    problems = layering_problems(PROJECT_ROOT)
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


def test_no_import_cycles() -> None:
    cycles = import_cycles(PROJECT_ROOT)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_real_tree_has_every_layer() -> None:
    """Guards the checker itself: a typo in a prefix would silently place nothing."""
    modules = discover(PROJECT_ROOT)
    layers = {layer_of(m) for m in modules}
    assert layers >= {0, 1, 2, 3, 4}
    assert any(is_within(m, PERF) for m in modules)
    _, edges = edges_of(PROJECT_ROOT)
    assert len([e for e in edges if e.explicit]) > 100


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


BASE_TREE = {
    "tools/__init__.py": "",
    "tools/low.py": "X = 1\n",
    "agent/__init__.py": "",
    "agent/protocol/__init__.py": "",
    "agent/protocol/calls.py": "from tools.low import X\n",
    "agent/conversation/__init__.py": "",
    "agent/conversation/graph.py": "from agent.protocol import calls\n",
    "evals/__init__.py": "",
    "evals/suite.py": "",
    "evals/perf/__init__.py": "",
    "evals/perf/bench.py": "import cli\nfrom evals import suite\n",
    "rl/__init__.py": "",
    "rl/train.py": "",
    "cli.py": "import rl.train\nfrom evals.suite import *\n",
}


def test_a_clean_tree_has_no_problems(tmp_path: Path) -> None:
    _write(tmp_path, BASE_TREE)
    assert layering_problems(tmp_path) == []
    assert import_cycles(tmp_path) == []


def test_an_upward_import_inside_a_function_is_named(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            **BASE_TREE,
            "tools/low.py": "X = 1\n\n\ndef f():\n    from agent.conversation.graph import g\n",
        },
    )
    assert layering_problems(tmp_path) == [
        "tools/low.py:5 imports agent.conversation.graph (layer 2) from layer 0"
    ]


def test_type_checking_relative_and_dynamic_imports_count(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            **BASE_TREE,
            "agent/protocol/calls.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from ..conversation import graph\n"
            ),
            "tools/low.py": "import importlib\nimportlib.import_module(f'rl.{1}')\n",
        },
    )
    problems = layering_problems(tmp_path)
    assert "agent/protocol/calls.py:3 imports agent.conversation.graph (layer 2) from layer 1" in (
        problems
    )
    assert "tools/low.py:2 imports rl.train (layer 3) from layer 0" in problems


def test_peers_and_benchmarks_are_fenced(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            **BASE_TREE,
            "rl/train.py": "from evals import suite\n",
            "evals/suite.py": "def f():\n    import evals.perf.bench\n",
        },
    )
    assert layering_problems(tmp_path) == [
        "evals/suite.py:2 imports evals.perf.bench: the product never imports evals.perf",
        "rl/train.py:1 imports evals.suite: evals and rl are peers",
    ]


def test_an_unplaced_module_is_named(tmp_path: Path) -> None:
    _write(tmp_path, {**BASE_TREE, "agent/loose.py": ""})
    assert layering_problems(tmp_path) == [
        "agent/loose.py has no layer: place it in LAYER_PREFIXES"
    ]


def test_a_cycle_through_function_imports_is_reported(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            **BASE_TREE,
            "evals/suite.py": "def f():\n    from evals.report import R\n",
            "evals/report.py": "from evals.plots import p\n",
            "evals/plots.py": "def p():\n    import evals.suite\n",
        },
    )
    assert import_cycles(tmp_path) == [
        "evals.plots -> evals.suite -> evals.report -> evals.plots  ("
        "evals/plots.py:2 imports evals.suite; evals/suite.py:2 imports evals.report; "
        "evals/report.py:1 imports evals.plots)"
    ]


def test_a_cycle_through_a_package_init_is_reported(tmp_path: Path) -> None:
    """``tools/pkg/__init__`` re-exports ``a``, ``a`` imports ``tools.stores``, which imports
    ``tools.pkg.b``: importing ``b`` runs the package ``__init__`` first, a real cycle."""
    _write(
        tmp_path,
        {
            **BASE_TREE,
            "tools/pkg/__init__.py": "from tools.pkg.a import A\n",
            "tools/pkg/a.py": "import tools.stores\nA = 1\n",
            "tools/pkg/b.py": "B = 1\n",
            "tools/stores.py": "from tools.pkg.b import B\n",
        },
    )
    (cycle,) = import_cycles(tmp_path)
    assert cycle.startswith("tools.pkg -> tools.pkg.a -> tools.stores -> tools.pkg  (")
