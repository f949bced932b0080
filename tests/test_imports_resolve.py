"""Every ``from project.module import name`` in the project names something that exists.

Imports inside functions (the lazy imports of heavy libraries and of benchmarks' child
processes) only run on their own path, so a moved function leaves them pointing at nothing
until a user takes that path; ``evals.perf.bench_train`` once imported ``resolve_model_dir``
from where it no longer lived. This reads every import statement with ``ast`` and resolves it.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "tools", "evals", "rl")


def project_imports() -> list[tuple[str, int, str, str]]:
    found = []
    files = [ROOT / "cli.py"] + [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            if node.module.split(".")[0] not in (*PACKAGES, "cli"):
                continue
            for alias in node.names:
                rel = str(path.relative_to(ROOT))
                found.append((rel, node.lineno, node.module, alias.name))
    return found


def unresolved(imports: list[tuple[str, int, str, str]]) -> list[str]:
    """The imports whose name is neither an attribute nor a submodule of its module."""
    missing = []
    for where, line, module_name, name in imports:
        module = importlib.import_module(module_name)
        if name == "*" or hasattr(module, name):
            continue
        try:
            importlib.import_module(f"{module_name}.{name}")
        except ModuleNotFoundError:
            missing.append(f"{where}:{line}: from {module_name} import {name}")
    return missing


def test_every_project_import_resolves() -> None:
    imports = project_imports()
    assert len(imports) > 100, "the walk found too few imports to be reading the project"
    missing = unresolved(imports)
    assert not missing, "imports of names that do not exist:\n" + "\n".join(missing)


def test_a_moved_function_is_reported() -> None:
    """What the bench_train import looked like after ``resolve_model_dir`` moved."""
    moved = [("evals/perf/bench_train.py", 65, "rl.checkpoints", "resolve_model_dir")]
    assert unresolved(moved) == [
        "evals/perf/bench_train.py:65: from rl.checkpoints import resolve_model_dir"
    ]
    here = [
        ("x.py", 1, "agent.runtime.model_store", "resolve_model_dir"),
        ("y.py", 2, "agent", "runtime"),
    ]
    assert unresolved(here) == []
