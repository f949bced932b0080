"""The generic JSONL/CSV catalog format: fields, typed attributes, bad rows, round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tools.catalog import CatalogFormatError, ImportReport, Judgments, Product, Query, generic
from tools.catalog.rows import detect_encoding

GENERIC = FIXTURES / "generic"


def test_jsonl_reads_good_rows_and_reports_every_bad_one() -> None:
    report = ImportReport()
    products = {p.id: p for p in generic.iter_jsonl(GENERIC / "catalog.jsonl", report)}

    assert list(products) == ["m-1", "2", "m-7"]
    assert report.accepted == 3
    reasons = {error.row: error.reason for error in report.errors}
    assert reasons == {
        4: "malformed JSON: Expecting value",
        5: "bad price: '12,99'",
        6: "missing id",
        7: "duplicate id: m-1",
        8: reasons[8],
        9: reasons[9],
        10: "malformed JSON: not an object",
        12: "missing title",
        13: "bad updated_at: 'yesterday'",
        14: "negative price: '-1'",
    }
    assert reasons[8].startswith("wrong encoding: not UTF-8")
    assert reasons[9].startswith("bad attribute value: [1, 2]")
    non_blank_lines = sum(
        1 for line in (GENERIC / "catalog.jsonl").read_bytes().splitlines() if line.strip()
    )
    assert report.accepted + report.rejected == non_blank_lines
    assert all(error.source == "catalog.jsonl" for error in report.errors)
    assert any("colour_code" in note for note in report.notes)


def test_jsonl_fields_are_typed() -> None:
    products = {p.id: p for p in generic.iter_jsonl(GENERIC / "catalog.jsonl", ImportReport())}
    mouse = products["m-1"]
    assert mouse.price == Decimal("14.99")
    assert mouse.category_path == ("Electronics", "Computer Mice")
    assert mouse.attributes == {"dpi": 1000.0, "connectivity": "wireless", "bluetooth": False}
    assert mouse.updated_at == datetime(2024, 3, 1, tzinfo=UTC)
    assert mouse.image_url == "https://example.com/m-1.jpg"
    gaming = products["2"]
    assert gaming.price == Decimal("29.5")
    assert gaming.category_path == ("Electronics", "Computer Mice")
    assert gaming.updated_at == datetime(2024, 3, 1, 10, tzinfo=timezone(timedelta(hours=2)))
    assert products["m-7"].price is None


def test_csv_reads_attribute_columns_and_json_attributes() -> None:
    report = ImportReport()
    products = {p.id: p for p in generic.iter_csv(GENERIC / "catalog.csv", report)}

    assert list(products) == ["c-1", "c-2"]
    assert products["c-1"].title == "Wireless Mouse, grey"
    assert products["c-1"].attributes == {
        "weight_g": 75.0,
        "dpi": 1000.0,
        "wireless": True,
        "colour": "grey",
    }
    assert products["c-2"].attributes == {"wireless": False}
    assert products["c-2"].category == "Electronics > Keyboards"
    reasons = {error.row: error.reason for error in report.errors}
    assert reasons[4] == "bad price: 'abc'"
    assert reasons[5] == "missing id"
    assert reasons[6] == "duplicate id: c-1"
    assert reasons[7] == "wrong number of fields: expected 12, got 3"
    assert reasons[8].startswith("bad attributes: not JSON")
    assert report.accepted + report.rejected == 7  # data rows in the file
    assert "catalog.csv read as utf-8" in report.notes


def test_latin1_csv_is_detected_and_decoded() -> None:
    path = GENERIC / "latin1.csv"
    assert detect_encoding(path) == "latin-1"
    report = ImportReport()
    products = list(generic.iter_products(path, report))
    assert [(p.title, p.brand, p.price) for p in products] == [
        ("Café au lait mug", "Müller", Decimal("9.50")),
        ("Crème brûlée torch", "Güde", Decimal("24.00")),
    ]
    assert "latin1.csv read as latin-1" in report.summary()


def test_missing_required_column_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "no_title.csv"
    path.write_text("id,name\n1,Mouse\n", encoding="utf-8")
    with pytest.raises(CatalogFormatError, match="missing column"):
        list(generic.iter_products(path, ImportReport()))


def test_unknown_suffix_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(CatalogFormatError, match=r"expected a \.jsonl"):
        generic.iter_products(tmp_path / "catalog.xml", ImportReport())


def test_products_round_trip_through_jsonl(tmp_path: Path) -> None:
    original = Product(
        id="rt-1",
        title="Mouse",
        description="Ünïcödé text",
        brand="Acme",
        category_path=("Electronics", "Mice"),
        price=Decimal("49.95"),
        attributes={"dpi": 1600.0, "wireless": True, "colour": "black"},
        image_url="https://example.com/rt-1.jpg",
        updated_at=datetime(2023, 5, 6, 7, 8, 9, tzinfo=UTC),
    )
    bare = Product(id="rt-2", title="Pad")
    path = tmp_path / "out.jsonl"
    assert generic.write_jsonl([original, bare], path) == 2
    report = ImportReport()
    assert list(generic.iter_jsonl(path, report)) == [original, bare]
    assert report.rejected == 0


def test_judgments_csv_round_trip(tmp_path: Path) -> None:
    report = ImportReport()
    judgments = generic.load_judgments(GENERIC / "judgments.csv", report)
    mouse = Query.from_text("wireless mouse")
    assert judgments.gains(mouse.id) == {"m-1": 3, "2": 1}
    assert judgments.max_gain == 3
    assert report.accepted == 4
    assert [error.row for error in report.errors] == [6]

    path = tmp_path / "judgments.csv"
    assert generic.write_judgments(judgments, path) == 4
    again = generic.load_judgments(path)
    assert again.qrels == judgments.qrels
    assert again.queries == judgments.queries


def test_write_judgments_quotes_commas(tmp_path: Path) -> None:
    judgments = Judgments()
    judgments.add(Query.from_text('mouse, "wireless"'), "p,1", 2)
    path = tmp_path / "j.csv"
    generic.write_judgments(judgments, path)
    assert generic.load_judgments(path).qrels == judgments.qrels
