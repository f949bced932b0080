"""A catalog re-imported under the same name never leaves indexes that show what it dropped.

Through the real ``shopagent`` command: import, index, re-import a changed catalog, then what a
user runs next (``search``, ``index --if-missing`` as ``make chat`` does) must notice.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli_search import shopagent


def write_catalog(path: Path, titles: dict[str, str]) -> Path:
    rows = [
        {"id": pid, "title": title, "brand": "Acme", "price": 10.0, "category": "Garden"}
        for pid, title in titles.items()
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_reimport_then_if_missing_rebuilds_and_the_dropped_product_is_gone(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    first = write_catalog(
        tmp_path / "v1.jsonl", {"old-1": "Garden hose reel", "keep-1": "Garden hose nozzle"}
    )
    assert shopagent(home, "data", "import", str(first), "--format", "jsonl", "--name", "shop")
    built = shopagent(home, "index", "--dataset", "shop", "--no-concepts")
    assert built.returncode == 0, built.stderr
    before = shopagent(home, "search", "hose reel", "--dataset", "shop")
    assert "Garden hose reel" in before.stdout
    assert "warning" not in before.stderr  # a fresh index is not stale

    second = write_catalog(
        tmp_path / "v2.jsonl", {"new-1": "Expandable garden hose", "keep-1": "Garden hose nozzle"}
    )
    reimported = shopagent(
        home, "data", "import", str(second), "--format", "jsonl", "--name", "shop"
    )
    assert reimported.returncode == 0, reimported.stderr

    stale = shopagent(home, "search", "hose reel", "--dataset", "shop")
    assert stale.returncode == 0, stale.stderr
    assert "warning: the shop catalog changed after its indexes were built" in stale.stderr
    assert "shopagent index --dataset shop" in stale.stderr

    again = shopagent(home, "index", "--dataset", "shop", "--if-missing", "--no-concepts")
    assert again.returncode == 0, again.stderr
    assert "the catalog changed since it was indexed; rebuilding" in again.stdout
    assert "skipping" not in again.stdout

    after = shopagent(home, "search", "hose", "--dataset", "shop")
    assert after.returncode == 0, after.stderr
    assert "Garden hose reel" not in after.stdout
    assert "Expandable garden hose" in after.stdout
    assert "warning" not in after.stderr

    unchanged = shopagent(home, "index", "--dataset", "shop", "--if-missing", "--no-concepts")
    assert "skipping" in unchanged.stdout  # a current index is still kept as it is


def test_an_index_from_before_identities_is_judged_by_time(tmp_path: Path) -> None:
    """Manifests written by an older shopagent have no catalog identity: a catalog written
    after the build still counts as changed."""
    home = tmp_path / "home"
    catalog = write_catalog(tmp_path / "v1.jsonl", {"a-1": "Garden hose reel"})
    assert shopagent(home, "data", "import", str(catalog), "--format", "jsonl", "--name", "shop")
    assert shopagent(home, "index", "--dataset", "shop", "--no-concepts").returncode == 0
    manifest_path = home / "indexes" / "shop" / "manifest.json"
    if not manifest_path.exists():  # the index folder's layout is the settings' to decide
        (manifest_path,) = home.rglob("manifest.json")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest.pop("catalog_identity")
    manifest["catalog_version"] = "20200101T000000.000000Z"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")

    stale = shopagent(home, "search", "hose", "--dataset", "shop")
    assert "catalog changed after its indexes were built" in stale.stderr
