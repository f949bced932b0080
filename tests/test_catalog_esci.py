"""ESCI (Amazon Shopping Queries) importer on small CSV fixtures and their parquet twins."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import FIXTURES
from tools.catalog import CatalogFormatError, ImportReport, Product, Query, esci

ESCI = FIXTURES / "esci"


@pytest.fixture()
def parquet_folder(tmp_path: Path) -> Path:
    """The CSV fixtures written as the published parquet files."""
    for stem in (esci.PRODUCTS_STEM, esci.EXAMPLES_STEM):
        with (ESCI / f"{stem}.csv").open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / f"{stem}.parquet")
    return tmp_path


def _products(folder: Path, **options: str) -> tuple[dict[str, Product], ImportReport]:
    report = ImportReport()
    return {p.id: p for p in esci.iter_products(folder, report, **options)}, report


@pytest.mark.parametrize("layout", ["csv", "parquet"])
def test_products_of_one_locale(layout: str, request: pytest.FixtureRequest) -> None:
    folder = ESCI if layout == "csv" else request.getfixturevalue("parquet_folder")
    products, report = _products(folder)

    assert list(products) == ["B000MOUSE1", "B000MOUSE2", "B000KEYBD1"]
    mouse = products["B000MOUSE1"]
    assert mouse.title == "Logitech M185 Wireless Mouse"
    assert mouse.brand == "Logitech"
    assert mouse.attributes == {
        "color": "Grey",
        "bullet_points": "Plug and play USB receiver",
        "locale": "us",
    }
    wired = products["B000MOUSE2"]
    assert wired.description == "3-button design\nWorks with Windows and Mac"
    assert "bullet_points" not in wired.attributes
    rows = [(e.row, e.reason) for e in report.errors]
    if layout == "csv":  # CSV rows are file lines; one record spans two lines
        assert rows == [(7, "missing title"), (8, "duplicate id: B000MOUSE2")]
    else:
        assert rows == [(5, "missing title"), (6, "duplicate id: B000MOUSE2")]
    assert any("1 " in note and "other locales" in note for note in report.notes)


def test_other_locale(parquet_folder: Path) -> None:
    products, report = _products(parquet_folder, locale="es")
    assert list(products) == ["B000MOUSE1"]
    assert products["B000MOUSE1"].title == "Logitech M185 Ratón inalámbrico"
    assert report.rejected == 0


@pytest.mark.parametrize("layout", ["csv", "parquet"])
def test_judgments(layout: str, request: pytest.FixtureRequest) -> None:
    folder = ESCI if layout == "csv" else request.getfixturevalue("parquet_folder")
    report = ImportReport()
    judgments = esci.load_judgments(folder, report)

    assert judgments.max_gain == 3
    assert judgments.gains(Query.from_text("wireless mouse").id) == {
        "B000MOUSE1": 3,
        "B000MOUSE2": 2,
        "B000KEYBD1": 1,
    }
    assert judgments.gains(Query.from_text("keyboard").id) == {"B000KEYBD1": 3, "B000MOUSE1": 0}
    assert len(judgments) == 2
    assert [e.reason.split(":")[0] for e in report.errors] == ["bad judgment"]

    test_only = esci.load_judgments(folder, split="test")
    assert [q.text for q in test_only] == ["keyboard"]


def test_parquet_is_preferred_and_missing_files_are_clear(parquet_folder: Path) -> None:
    shutil.copy(ESCI / f"{esci.PRODUCTS_STEM}.csv", parquet_folder)
    assert esci.find_file(parquet_folder, esci.PRODUCTS_STEM).suffix == ".parquet"
    with pytest.raises(CatalogFormatError, match="shopping_queries_dataset_products"):
        esci.find_file(parquet_folder / "nowhere", esci.PRODUCTS_STEM)


def test_parquet_missing_required_column(tmp_path: Path) -> None:
    pq.write_table(
        pa.Table.from_pylist([{"product_id": "x"}]), tmp_path / f"{esci.PRODUCTS_STEM}.parquet"
    )
    with pytest.raises(CatalogFormatError, match="product_title"):
        list(esci.iter_products(tmp_path, ImportReport()))
