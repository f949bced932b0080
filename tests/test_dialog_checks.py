"""The dialog suite's checks (``evals.dialog_checks``) on hand-made turn records: each check
fails on what a shopper would call wrong and passes otherwise, without a chat."""

from __future__ import annotations

from typing import Any

from evals.dialog_checks import failed_checks, word_pattern


def record(*products: tuple[str, str, str | None], reply: str = "") -> dict[str, Any]:
    shown = [
        {"position": i, "id": str(i), "title": title, "brand": brand, "price": price}
        for i, (title, brand, price) in enumerate(products, start=1)
    ]
    return {"recommended": shown, "final_answer": reply}


MICE = record(
    ("HP Wireless Optical mouse", "HP", "15.95"),
    ("Macally Wireless Notebook Mouse", "Macally", "28.95"),
    ("Kensington Mouse Wrist Pillow", "Kensington", "13.95"),
    reply="Here are the 3 best matches for wireless mouse ($13.95 to $28.95).",
)


def test_price_bounds_hold_for_every_shown_product_and_need_a_price() -> None:
    assert failed_checks(MICE, {"max_price": 30, "min_price": 10}) == []
    assert failed_checks(MICE, {"max_price": 20})[0].startswith("max_price 20: #2")
    unpriced = record(("Cordless Drill", "", None))
    assert failed_checks(unpriced, {"max_price": 100})


def test_brands_any_and_none_compare_case_insensitively() -> None:
    assert failed_checks(MICE, {"brands_any": ["hp", "MACALLY", "kensington"]}) == []
    assert failed_checks(MICE, {"brands_any": ["HP"]})
    assert failed_checks(MICE, {"brands_none": ["logitech"]}) == []
    assert failed_checks(MICE, {"brands_none": ["hp"]})


def test_type_words_read_whole_words_in_the_singular_or_plural() -> None:
    assert word_pattern("drill").search("Cordless Drill/Driver Kit")
    assert word_pattern("drills").search("Cordless Drill")
    assert word_pattern("ceiling fan").search("Hugger 52 in. Ceiling Fans")
    assert not word_pattern("fan").search("Westinghouse Fanlight")
    assert failed_checks(MICE, {"type_words": ["mouse"]}) == []
    assert failed_checks(MICE, {"type_lacks": ["pillow"]})  # the wrist pillow is #3


def test_order_and_counts() -> None:
    assert failed_checks(MICE, {"order": "price_asc"})
    ordered = record(("a", "X", "1.00"), ("b", "X", "1.00"), ("c", "X", "2.50"))
    assert failed_checks(ordered, {"order": "price_asc"}) == []
    assert failed_checks(ordered, {"order": "price_desc"})
    assert failed_checks(MICE, {"reply_counts": True}) == []
    one = record(("a", "X", "1"), reply="Here are the 5 best matches for a.")
    assert failed_checks(one, {"reply_counts": True})


def test_no_products_reply_text_and_cheaper_than_the_list_before() -> None:
    empty = record(reply="Your message looks written in Spanish.")
    assert failed_checks(empty, {"no_products": True, "reply_contains": ["spanish"]}) == []
    assert failed_checks(MICE, {"no_products": True})
    assert failed_checks(MICE, {"reply_regex": r"#\d"})
    cheaper = record(("HP mouse", "HP", "12.00"))
    assert failed_checks(cheaper, {"cheaper_than_shown": 1}, MICE) == []
    assert failed_checks(cheaper, {"cheaper_than_shown": 3}, MICE) == []  # #3 cost 13.95
    assert failed_checks(cheaper, {"cheaper_than_shown": 4}, MICE)  # no #4 before
    assert failed_checks(MICE, {"cheaper_than_shown": 1}, MICE)


def test_an_unknown_check_fails_rather_than_passing_silently() -> None:
    assert failed_checks(MICE, {"max_prize": 30}) == ["unknown check 'max_prize'"]
