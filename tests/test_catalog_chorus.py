"""Chorus (Icecat) importer on the real files, and its bad-row handling on small zips."""

from __future__ import annotations

import json
import time
import zipfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tools.catalog import ImportReport, Product, Query, chorus


@pytest.fixture(scope="module")
def chorus_load(shared_data: Path) -> tuple[list[Product], ImportReport, float]:
    report = ImportReport()
    started = time.perf_counter()
    products = list(chorus.iter_products(shared_data / "chorus-electronics", report))
    return products, report, time.perf_counter() - started


def test_all_real_products_load_quickly(
    chorus_load: tuple[list[Product], ImportReport, float],
) -> None:
    products, report, seconds = chorus_load
    assert len(products) == 19_406
    assert report.accepted == 19_406 and report.rejected == 0
    assert len({p.id for p in products}) == 19_406
    assert seconds < 10, f"loading Chorus took {seconds:.1f} s"


def test_known_product_is_mapped(chorus_load: tuple[list[Product], ImportReport, float]) -> None:
    products, _, _ = chorus_load
    xerox = next(p for p in products if p.id == "3920564")
    assert xerox.price == Decimal("49.95")
    assert xerox.brand == "Xerox"
    assert xerox.title == "Xerox 006R90321 toner cartridge Original Black 6 pc(s)"
    assert xerox.description == "Toner (6 Per Box) for CopyCentre C65 Digital Copier"
    assert xerox.image_url.endswith("img_3920564_medium_1472618727_1445_7091.jpg")
    assert xerox.updated_at == datetime(2009, 12, 10, tzinfo=UTC)
    assert xerox.category_path == ()
    assert xerox.attributes["model"] == "006R90321"
    assert xerox.attributes["ean"] == "0095205603217"
    assert xerox.attributes["quantity_per_pack"] == 6.0
    assert xerox.attributes["printing_colours"] == "Black"


def test_every_attribute_key_is_kept(
    shared_data: Path, chorus_load: tuple[list[Product], ImportReport, float]
) -> None:
    products, _, _ = chorus_load
    with zipfile.ZipFile(shared_data / "chorus-electronics" / "1.json.zip") as archive:
        raw = json.loads(archive.read("1.json"))
    by_id = {p.id: p for p in products}
    for item in raw[:500]:
        attr_keys = [key for key in item if key.startswith("attr_")]
        # model + ean + every attr_* key, none merged away by a name clash
        assert len(by_id[item["id"]].attributes) == len(attr_keys) + 2
    kinds = {type(value) for p in products for value in p.attributes.values()}
    assert kinds == {str, float, bool}


def test_real_judgments(shared_data: Path) -> None:
    judgments = chorus.load_judgments(shared_data / "chorus-electronics")
    assert len(judgments) == 135
    assert len(judgments.with_positive()) == 116
    assert judgments.max_gain == 3
    assert sum(len(gains) for gains in judgments.qrels.values()) == 3_668
    laptop = Query.from_text("laptop")
    assert judgments.gains(laptop.id)["1229111"] == 0
    assert {g for gains in judgments.qrels.values() for g in gains.values()} == {0, 1, 2, 3}


def _zip(path: Path, items: Any) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(path.name.removesuffix(".zip"), json.dumps(items))
    return path


def _item(id: str, **extra: Any) -> dict[str, Any]:
    return {"id": id, "name": f"M-{id}", "title": f"Product {id}", "price": 100, **extra}


def test_bad_rows_are_reported_and_skipped(tmp_path: Path) -> None:
    _zip(
        tmp_path / "1.json.zip",
        [
            _item("1", attr_b_height_adjustment=True, attr_n_height_adjustment=100.0),
            {"title": "no id", "price": 5},
            _item("2", price="12.50"),
            _item("1"),
            "not an object",
            _item("3", title=""),
            _item("4", price=-5),
        ],
    )
    _zip(tmp_path / "2.json.zip", [_item("5", attr_t_model="clash with name")])
    (tmp_path / "3.json.zip").write_bytes(b"this is not a zip file")
    report = ImportReport()
    products = list(chorus.iter_products(tmp_path, report))

    assert [p.id for p in products] == ["1", "5"]
    assert products[0].price == Decimal("1.00")
    assert products[0].attributes == {
        "model": "M-1",
        "height_adjustment_flag": True,
        "height_adjustment": 100.0,
    }
    assert products[1].attributes == {"model": "M-5", "model_text": "clash with name"}
    assert [(e.source, e.row, e.reason.split(":")[0]) for e in report.errors] == [
        ("1.json.zip", 2, "missing id"),
        ("1.json.zip", 3, "bad price"),
        ("1.json.zip", 4, "duplicate id"),
        ("1.json.zip", 5, "malformed JSON"),
        ("1.json.zip", 6, "missing title"),
        ("1.json.zip", 7, "negative price"),
        ("3.json.zip", 0, "malformed JSON file"),
    ]
    assert report.accepted == 2


@pytest.mark.parametrize(
    ("cents", "price"),
    [(4995, Decimal("49.95")), (100, Decimal("1.00")), (0, Decimal("0.00")), (None, None)],
)
def test_price_from_cents(cents: int | None, price: Decimal | None) -> None:
    assert chorus.price_from_cents(cents) == price
