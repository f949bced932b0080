"""Issue 15, item 3: prices that are not prices (``1e999999999``, ``1e400``, ``-0``, ``nan``)
in a catalog, on the command line and in a serialised request."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.hostile_helpers import import_catalog, shopagent, write_jsonl
from tools.errors import BadInput
from tools.search.request import SearchFilters, SearchRequest


@pytest.fixture(scope="module")
def priced_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("hostile-prices")
    catalog = write_jsonl(
        home.parent / "prices.jsonl",
        [
            {"id": "ok1", "title": "Cheap mouse", "price": "9.99"},
            {"id": "huge", "title": "Huge mouse", "price": "1e999999999"},
            {"id": "long", "title": "Long mouse", "price": "1e400"},
            {"id": "zero", "title": "Free mouse", "price": "-0"},
            {"id": "neg", "title": "Negative mouse", "price": "-5"},
            {"id": "nan", "title": "NaN mouse", "price": "NaN"},
            {"id": "ok2", "title": "Pricey mouse", "price": 49.5},
        ],
    )
    started = time.perf_counter()
    imported = import_catalog(home, catalog, "jsonl", "prices")
    assert time.perf_counter() - started < 60  # 1e999999999 once cost 103 s in one search
    assert imported.returncode == 0, imported.stderr
    built = shopagent(home, "index", "--dataset", "prices", "--no-concepts")
    assert built.returncode == 0, built.stderr
    return home, imported.stdout.decode()


def test_bad_catalog_prices_are_reported_by_row_and_the_rest_kept(
    priced_home: tuple[Path, str],
) -> None:
    _, report = priced_home
    assert "3 products imported, 4 rows skipped" in report
    assert "prices.jsonl:2: bad price: '1e999999999' is above the ceiling" in report
    assert "prices.jsonl:3: bad price: '1e400' is above the ceiling" in report
    assert "prices.jsonl:5: negative price" in report
    assert "prices.jsonl:6: bad price: 'NaN'" in report


def test_minus_zero_shows_as_zero(priced_home: tuple[Path, str]) -> None:
    home, _ = priced_home
    found = shopagent(home, "search", "mouse", "--dataset", "prices")
    out = found.stdout.decode()
    assert found.returncode == 0, found.stderr
    for title in ("Cheap mouse", "Free mouse", "Pricey mouse"):
        assert title in out
    assert "-0.00" not in out and "0.00" in out
    assert "Huge mouse" not in out and "Long mouse" not in out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--min-price", "nan"), "--min-price must be a finite number"),
        (("--max-price", "nan"), "--max-price must be a finite number"),
        (("--max-price", "inf"), "--max-price must be a finite number"),
        (("--min-price", "-1"), "--min-price must not be negative"),
        (("--max-price", "1e400"), "--max-price is above the price ceiling"),
    ],
)
def test_price_flags_that_are_not_prices_are_one_line(
    priced_home: tuple[Path, str], flags: tuple[str, str], message: str
) -> None:
    home, _ = priced_home
    result = shopagent(home, "search", "mouse", "--dataset", "prices", *flags)
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert message in lines[0]
    assert "InvalidOperation" not in lines[0] and "unexpected" not in lines[0]


@pytest.mark.parametrize("bad", ["nan", "abc", "1e999999999", "-1", True, [1]])
def test_serialised_requests_with_bad_prices_raise_bad_input(bad: object) -> None:
    with pytest.raises(BadInput, match="min_price"):
        SearchRequest.from_dict({"text": "mouse", "filters": {"min_price": bad}})
    with pytest.raises(BadInput, match="max_price"):
        SearchFilters.from_dict({"max_price": bad})


def test_a_request_of_the_wrong_shape_is_bad_input_too() -> None:
    with pytest.raises(BadInput, match="not a search request"):
        SearchRequest.from_dict({"text": "mouse", "size": "ten"})
    assert SearchRequest.from_dict({"text": "m", "filters": {"min_price": "-0"}}).filters == (
        SearchFilters(min_price=SearchFilters.from_dict({"min_price": "0"}).min_price)
    )
