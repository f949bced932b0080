"""Home Depot importer on the real files, and on small latin-1 / bad-row files."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from tools.catalog import ImportReport, Query, homedepot


def test_real_products_and_judgments(shared_data: Path) -> None:
    folder = shared_data / "homedepot"
    report = ImportReport()
    started = time.perf_counter()
    products = list(homedepot.iter_products(folder, report))
    seconds = time.perf_counter() - started

    assert len(products) == 54_667
    assert report.rejected == 0
    assert seconds < 5, f"loading Home Depot took {seconds:.1f} s"
    assert products[0].id == "100001"
    assert products[0].title == "Simpson Strong-Tie 12-Gauge Angle"
    assert "products.csv read as utf-8" in report.notes
    assert "0 products added from judgments.csv titles (not in products.csv)" in report.notes

    judgments = homedepot.load_judgments(folder)
    assert 10_700 <= len(judgments) <= 10_900
    assert judgments.max_gain == 1
    bracket = Query.from_text("l bracket")
    assert judgments.gains(bracket.id)["100001"] == 1  # relevance 2.5
    assert judgments.judged_products() <= {p.id for p in products}


def _write_latin1_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "products.csv").write_bytes(
        "product_uid,product_title\n"
        "1,Café table\n"
        "2,Crème paint 1-gal.\n"
        ",Row without an id\n"
        "3,\n"
        "1,Second row for uid 1\n".encode("latin-1")
    )
    (folder / "judgments.csv").write_text(
        "id,product_uid,product_title,search_term,relevance\n"
        "1,1,Café table,cafe table,3\n"
        "2,9,Garden hose 50 ft.,garden hose,2.33\n"
        "3,9,Garden hose 50 ft.,hose,2\n"
        "4,2,Crème paint 1-gal.,paint,2.32\n"
        "5,2,Crème paint 1-gal.,primer,lots\n"
        "6,8,,hose reel,1\n",
        encoding="utf-8",
    )
    return folder


def test_latin1_bad_rows_and_products_added_from_judgments(tmp_path: Path) -> None:
    folder = _write_latin1_folder(tmp_path / "hd")
    report = ImportReport()
    products = {p.id: p for p in homedepot.iter_products(folder, report)}

    assert products["1"].title == "Café table"
    assert products["2"].title == "Crème paint 1-gal."
    assert products["9"].title == "Garden hose 50 ft."
    assert list(products) == ["1", "2", "9"]
    assert [(e.source, e.row, e.reason) for e in report.errors] == [
        ("products.csv", 4, "missing id"),
        ("products.csv", 5, "missing title"),
        ("products.csv", 6, "duplicate id: 1"),
        ("judgments.csv", 7, "missing title"),
    ]
    assert "products.csv read as latin-1" in report.notes
    assert "judgments.csv read as utf-8" in report.notes
    assert "1 products added from judgments.csv titles (not in products.csv)" in report.notes
    # 5 product rows + the 2 judgment rows that introduced unseen products (9 and 8)
    assert report.accepted + report.rejected == 7


def test_binary_gain_threshold(tmp_path: Path) -> None:
    folder = _write_latin1_folder(tmp_path / "hd")
    report = ImportReport()
    judgments = homedepot.load_judgments(folder, report)
    gain = {
        text: judgments.gains(Query.from_text(text).id)
        for text in ("cafe table", "garden hose", "hose", "paint")
    }
    assert gain == {
        "cafe table": {"1": 1},
        "garden hose": {"9": 1},
        "hose": {"9": 0},
        "paint": {"2": 0},
    }
    assert [(e.row, e.reason.split(":")[0]) for e in report.errors] == [(6, "bad judgment")]
    assert report.accepted == 5  # the judgment of product 8 is valid even though it has no title

    strict = homedepot.load_judgments(folder, threshold=Decimal(3))
    assert strict.gains(Query.from_text("garden hose").id) == {"9": 0}
    assert homedepot.gain_for(Decimal("2.33")) == 1
    assert homedepot.gain_for(Decimal("2.32")) == 0
    assert Decimal("2.33") == homedepot.RELEVANT_AT
