"""The CLI's data → index → search path, and its one-line errors, through the real entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def shopagent(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHOPAGENT_HOME": str(home), "COLUMNS": "200"}
    env.pop("SHOPAGENT_ES_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def indexed_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    imported = shopagent(
        home,
        "data",
        "import",
        str(FIXTURES / "generic" / "catalog.jsonl"),
        "--format",
        "jsonl",
        "--name",
        "mini",
    )
    assert imported.returncode == 0, imported.stderr
    assert "skipped" in imported.stdout  # the fixture's bad rows are reported with row numbers
    built = shopagent(home, "index", "--dataset", "mini", "--no-concepts")
    assert built.returncode == 0, built.stderr
    assert "products/s" in built.stdout or "/s)" in built.stdout
    return home


def test_search_shows_a_product_table(indexed_home: Path) -> None:
    found = shopagent(indexed_home, "search", "wireless mouse", "--dataset", "mini")
    assert found.returncode == 0, found.stderr
    assert "Wireless Mouse M185" in found.stdout
    assert "14.99" in found.stdout


def test_price_filter_applies(indexed_home: Path) -> None:
    found = shopagent(indexed_home, "search", "mouse", "--dataset", "mini", "--min-price", "20")
    assert found.returncode == 0, found.stderr
    assert "Wireless Mouse M185" not in found.stdout
    assert "Gaming Mouse G502" in found.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("search", "mouse", "--dataset", "mini", "--max-price", "cheap"),
            "--max-price must be a number",
        ),
        (("search", "mouse", "--dataset", "absent"), "shopagent index --dataset absent"),
        (("search", "mouse", "--dataset", "mini", "--attribute", "novalue"), "KEY=VALUE"),
        (("index", "--dataset", "absent"), "shopagent data import"),
        (("data", "fetch", "wands"), "no public download"),
    ],
)
def test_bad_input_is_one_clear_line(
    indexed_home: Path, args: tuple[str, ...], message: str
) -> None:
    result = shopagent(indexed_home, *args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and message in lines[0]
