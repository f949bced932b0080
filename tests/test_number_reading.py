"""One reading of amounts for the CLI, tool calls and the chat: a decimal comma is a decimal
mark, digit groups are thousands, whichever convention the shopper writes in."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from agent.conversation.prices import price_bounds
from tests.test_cli_search import indexed_home, shopagent  # noqa: F401  (module fixture)
from tools.catalog.product import PriceError, parse_price


@pytest.mark.parametrize(
    ("written", "price"),
    [
        ("12,99", Decimal("12.99")),
        ("1.000,50 €", Decimal("1000.50")),
        ("$1,299", Decimal(1299)),
        ("1 299 €", Decimal(1299)),
        ("1,299.99", Decimal("1299.99")),
        ("49.99", Decimal("49.99")),
        ("12,999", Decimal(12999)),
    ],
)
def test_the_cli_and_tool_calls_read_amounts_as_the_chat_does(written: str, price: Decimal) -> None:
    assert parse_price(written, "--max-price") == price


@pytest.mark.parametrize("message", ["under 12,99 euros", "under $12.99"])
def test_the_chat_reads_the_same_amount(message: str) -> None:
    assert price_bounds(message).max_price == Decimal("12.99")


@pytest.mark.parametrize("written", ["1e400", "-5", "abc", "nan"])
def test_what_is_not_a_price_is_refused(written: str) -> None:
    with pytest.raises(PriceError):
        parse_price(written, "--max-price")


def test_search_max_price_with_a_decimal_comma_filters_as_written(
    indexed_home: Path,  # noqa: F811
) -> None:
    cheap = shopagent(
        indexed_home, "search", "wireless mouse", "-d", "mini", "--max-price", "12,99"
    )
    assert cheap.returncode == 0, cheap.stderr
    assert "Wireless Mouse M185" not in cheap.stdout  # 14.99 is above 12.99 (not 1299)
    grouped = shopagent(
        indexed_home, "search", "wireless mouse", "-d", "mini", "--max-price", "1.000,50 €"
    )
    assert grouped.returncode == 0, grouped.stderr
    assert "Wireless Mouse M185" in grouped.stdout  # 14.99 is under 1000.50 (not 1.0005)


@pytest.mark.parametrize("message", ["a mouse under -5 dollars", "a mouse under 1e999999999"])
def test_the_chat_reads_an_amount_that_is_no_price_as_no_limit_and_no_words(message: str) -> None:
    from agent.conversation.prices import without_prices

    assert price_bounds(message).is_empty()  # not "under 5", not "under 1"
    assert without_prices(message) == "a mouse"  # "e999999999" is never searched
