"""WANDS (Wayfair) importer on small tab-separated fixtures in the published layout."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import FIXTURES
from tools.catalog import ImportReport, Query, wands

WANDS = FIXTURES / "wands"


def test_products() -> None:
    report = ImportReport()
    products = {p.id: p for p in wands.iter_products(WANDS, report)}

    assert list(products) == ["0", "1", "2"]
    bed = products["0"]
    assert bed.title == "solid wood platform bed"
    assert bed.category_path == ("Furniture", "Bedroom Furniture", "Beds & Headboards", "Beds")
    assert bed.attributes == {
        "product_class": "Beds",
        "overallwidth_sidetoside": 64.7,
        "producttype": "platform bed",
        "color": "brown, walnut",
        "rating_count": 15.0,
        "average_rating": 4.5,
        "review_count": 15.0,
    }
    assert products["1"].description == ""
    assert products["1"].attributes["capacityquarts"] == 7.0
    vanity = products["2"]
    assert vanity.title == 'fawkes 36" blue vanity'
    assert vanity.attributes == {
        "product_class": "Vanities|Bathroom Vanities",
        "basematerial": "wood",
    }
    assert [(e.row, e.reason) for e in report.errors] == [(5, "missing title")]
    assert report.accepted + report.rejected == 4


def test_judgments() -> None:
    report = ImportReport()
    judgments = wands.load_judgments(WANDS, report)

    assert judgments.max_gain == 2
    assert judgments.gains(Query.from_text("slow cooker").id) == {"1": 2, "0": 0}
    assert judgments.gains(Query.from_text("platform bed").id) == {"0": 2, "2": 1}
    assert judgments.gains(Query.from_text("salon chair").id) == {"2": 0}
    assert [(e.source, e.row) for e in report.errors] == [("label.csv", 7), ("label.csv", 8)]
    assert len(judgments.with_positive()) == 2


def test_repository_checkout_layout(tmp_path: Path) -> None:
    shutil.copytree(WANDS, tmp_path / "dataset")
    assert len(list(wands.iter_products(tmp_path, ImportReport()))) == 3
    assert len(wands.load_judgments(tmp_path)) == 3


def test_feature_parsing() -> None:
    assert wands.parse_features("a:1|b : two words|:orphan|c:|a:1|Max-DPI : 16000") == {
        "a": 1.0,
        "b": "two words",
        "max_dpi": 16000.0,
    }
