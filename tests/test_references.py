"""``agent.conversation.references.find_reference``: a shopper pointing at the list on screen.

Each case is a message, how many products were shown last, and the reference it must resolve
to (``None``: not a reference, so the message is searched). Positions are 1-based and kept
even outside the list, so the answer can say they do not exist.
"""

from __future__ import annotations

import pytest

from agent.conversation.references import Reference, find_reference, without_reference


@pytest.mark.parametrize(
    ("text", "positions"),
    [
        ("the second one", (2,)),
        ("tell me more about the second one", (2,)),
        ("the 3rd", (3,)),
        ("the first", (1,)),
        ("third option", (3,)),
        ("#3", (3,)),
        ("number 2", (2,)),
        ("item 4 please", (4,)),
        ("option 2 looks good", (2,)),
        ("the last one", (5,)),  # the last of the five shown
        ("#7", (7,)),  # beyond the list: kept, so the answer can say so
    ],
)
def test_details_of_one_shown_product(text: str, positions: tuple[int, ...]) -> None:
    assert find_reference(text, 5) == Reference("details", positions)


def test_the_last_one_is_the_length_of_the_list_shown() -> None:
    assert find_reference("the last one", 3) == Reference("details", (3,))
    assert find_reference("the last one", 8) == Reference("details", (8,))


@pytest.mark.parametrize(
    ("text", "positions"),
    [
        ("compare 1 and 3", (1, 3)),
        ("compare the first and the third", (1, 3)),
        ("compare 1, 2 and 3", (1, 2, 3)),
        ("2 vs 3", (2, 3)),
        ("1 vs 2 vs 3", (1, 2, 3)),
        ("what's the difference between 2 and 4", (2, 4)),
        ("how does the 2nd compare to the 4th", (2, 4)),
        ("compare 1 and 3 and 3", (1, 3)),  # each position once, in the shopper's order
    ],
)
def test_compare_two_or_more(text: str, positions: tuple[int, ...]) -> None:
    assert find_reference(text, 5) == Reference("compare", positions)


@pytest.mark.parametrize(
    ("text", "reference"),
    [
        # one position to compare is a look at that product
        ("compare 2", Reference("details", (2,))),
        # a comparison word without positions points at nothing
        ("compare them", None),
        ("compare $30 and $40 ones", None),  # prices, not positions
    ],
)
def test_a_comparison_without_two_positions(text: str, reference: Reference | None) -> None:
    assert find_reference(text, 5) == reference


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("more like 2", 2),
        ("more like the first one", 1),
        ("something similar to the third one", 3),
        ("similar to #4", 4),
        ("alternatives to 3", 3),
        ("show me something like number 3", 3),
        ("like 2 but cheaper", 2),
    ],
)
def test_more_like_one_shown_product(text: str, position: int) -> None:
    assert find_reference(text, 5) == Reference("similar", (position,))


@pytest.mark.parametrize(
    "text",
    [
        "a mouse under 30",
        "2 mice",
        "27 inch monitor",
        "I want 2",  # a bare number is a position only after compare / like
        "first",
        "the one",
        "compare 10% off",
    ],
)
def test_a_search_is_not_a_reference(text: str) -> None:
    assert find_reference(text, 5) is None


def test_a_reference_before_any_list_is_still_a_reference() -> None:
    """Never silently read as a search: the answer says nothing was shown."""
    assert find_reference("the second one", 0) == Reference("details", (2,))


def test_two_digit_positions_in_a_long_list() -> None:
    assert find_reference("product 10", 12) == Reference("details", (10,))
    assert find_reference("compare 10 and 12", 12) == Reference("compare", (10, 12))


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "morning! every mirror i've tried fogs up in like 10 seconds. i need a fogless "
            "shower mirror",
            0,
        ),
        ("hosting thanksgiving for the first time this year, need a propane turkey fryer", 0),
        ("my old one lasted like 12 years, looking for a new dishwasher that is quiet", 5),
    ],
)
def test_a_number_in_a_long_request_is_not_a_position_off_the_list(text: str, shown: int) -> None:
    """Sessions written by people read "10 seconds" as "#10" and "the first time" as "#1",
    and answered "there is no list to pick #10 from": a request, not a reference."""
    assert find_reference(text, shown) is None


def test_a_long_message_still_points_at_a_product_that_is_on_the_list() -> None:
    text = "ok so tell me a bit more about the second one, does it come with a battery"
    assert find_reference(text, 5) == Reference("details", (2,))
    assert find_reference("the second one", 0) == Reference("details", (2,))


@pytest.mark.parametrize(
    ("text", "rest"),
    [
        ("something like the second one but cheaper", "one but cheaper"),
        ("more like 2 in black", "in black"),
        ("like #3 but bigger", "but bigger"),
    ],
)
def test_what_a_similarity_reference_asks_beyond_the_product(text: str, rest: str) -> None:
    assert " ".join(without_reference(text).split()) == rest


@pytest.mark.parametrize(
    "text",
    ["which of these is waterproof?", "do any of them have bluetooth?", "which ones are wireless"],
)
def test_a_question_about_the_whole_list_points_at_every_product(text: str) -> None:
    assert find_reference(text, 4) == Reference("which", (1, 2, 3, 4))
    assert find_reference(text, 0) is None  # no list: a request
