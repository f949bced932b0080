"""Every package the product imports is declared in pyproject.toml, and test tools stay in dev.

A package that arrives only as another one's dependency (httpx through chromadb, pydantic
through langchain) works until that package drops it; a test-only package (ranx) in the main
dependencies makes every user install it. Both are read from the source with ``ast``.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("agent", "tools", "evals", "rl")
OURS = {*PRODUCT, "cli"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(requirements: list[str]) -> set[str]:
    return {_normal(re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0]) for r in requirements}


def product_imports(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """Top-level third-party module -> the first ``file:line`` importing it (benchmarks too:
    ``python -m evals.perf.bench_x`` must run on a plain install)."""
    files = [p for pkg in PRODUCT for p in sorted((root / pkg).rglob("*.py"))]
    found: dict[str, str] = {}
    for path in [*files, root / "cli.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in OURS and top not in sys.stdlib_module_names:
                    found.setdefault(top, f"{path.relative_to(root)}:{node.lineno}")
    return found


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return dict(packages_distributions())  # slow (reads every installed package): once


def _project() -> dict:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_every_imported_package_is_declared() -> None:
    declared = _requirement_names(_project()["dependencies"])
    distributions = _distributions()
    undeclared = [
        f"{where} imports {module} (from {', '.join(distributions.get(module, ['?']))})"
        for module, where in sorted(product_imports().items())
        if not {_normal(d) for d in distributions.get(module, [])} & declared
    ]
    assert not undeclared, "declare these in [project.dependencies]:\n" + "\n".join(undeclared)


def test_dev_only_packages_are_not_imported_by_the_product() -> None:
    project = _project()
    dev_only = _requirement_names(project["optional-dependencies"]["dev"]) - _requirement_names(
        project["dependencies"]
    )
    assert "ranx" in dev_only  # metrics are checked against it in tests, never computed by it
    distributions = _distributions()
    leaking = [
        f"{where} imports {module}"
        for module, where in sorted(product_imports().items())
        if {_normal(d) for d in distributions.get(module, [])} & dev_only
    ]
    assert not leaking, "the product imports dev-only packages:\n" + "\n".join(leaking)


def test_the_scan_sees_the_known_imports() -> None:
    """Guards the scan itself: an empty result would pass both tests above."""
    found = product_imports()
    assert {"httpx", "chromadb", "tantivy", "typer"} <= set(found)
    assert found["httpx"].startswith("tools/search/")
