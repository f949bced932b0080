"""The CLI's data → index → search path, and its one-line errors, through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tantivy

from tools.search.tantivy_schema import ANALYZER, TEXT_FIELDS

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


def test_index_if_missing_rebuilds_an_outdated_lexical_index_and_keeps_the_concepts(
    tmp_path: Path,
) -> None:
    """An index from before the title kept word positions: `make chat`'s `index --if-missing`
    rebuilds the lexical index (seconds) and leaves a finished concept index alone."""
    home = tmp_path / "home"
    imported = shopagent(
        home, "data", "import", str(FIXTURES / "generic" / "catalog.jsonl"), "--format", "jsonl",
        "--name", "mini",
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    index_dir = home / "indexes" / "mini"
    old = index_dir / "tantivy"
    old.mkdir(parents=True)
    builder = tantivy.SchemaBuilder()  # the old schema: no word positions anywhere
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    for field in TEXT_FIELDS.values():
        builder.add_text_field(field, tokenizer_name=ANALYZER, index_option="freq")
    tantivy.Index(builder.build(), path=str(old))
    manifest = {"dataset": "mini", "products": 7, "concepts": True, "lexical_backend": "tantivy"}
    (index_dir / "manifest.json").write_text(json.dumps(manifest))

    refused = shopagent(home, "search", "wireless mouse", "--dataset", "mini")
    assert refused.returncode != 0
    assert "built by an older shopagent; rebuild it with `shopagent index --dataset mini`" in (
        " ".join(refused.stderr.split())
    )
    rebuilt = shopagent(home, "index", "--dataset", "mini", "--if-missing")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "older shopagent; rebuilding it" in " ".join(rebuilt.stdout.split())
    assert "chroma" not in rebuilt.stdout  # the concept index is not embedded again
    assert json.loads((index_dir / "manifest.json").read_text())["concepts"] is True
    found = shopagent(home, "search", "wireless mouse", "--dataset", "mini")
    assert found.returncode == 0, found.stderr
    assert "Wireless Mouse M185" in found.stdout
    again = shopagent(home, "index", "--dataset", "mini", "--if-missing")
    assert "indexes exist" in again.stdout and "rebuilding" not in again.stdout
