"""Grounding: only products the tools returned are shown, with the catalog's prices and brands."""

from __future__ import annotations

from dataclasses import asdict, replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.conversation.grounding import GroundedAnswer, ground_answer, prose_end
from agent.conversation.model_io import VisibleText
from tests.catalog_samples import sample_products
from tools.catalog.product import Product
from tools.search.backend import BackendUnavailable

CATALOG = {p.id: p for p in sample_products()}


def returned(*ids: str) -> dict[str, Product]:
    return {pid: CATALOG[pid] for pid in ids}


def ground(
    text: str,
    turn_ids: list[str],
    retrieved: dict[str, Product] | None = None,
    catalog: dict[str, Product] | None = None,
    limit: int = 5,
) -> GroundedAnswer:
    shelf = CATALOG if catalog is None else catalog
    return ground_answer(
        text,
        turn_ids=turn_ids,
        retrieved=retrieved if retrieved is not None else returned(*turn_ids),
        lookup=shelf.get,
        limit=limit,
    )


def ids(answer: GroundedAnswer) -> list[str]:
    return [p.id for p in answer.products]


def test_citations_by_id_title_and_position_pick_products_in_ranking_order() -> None:
    turn = ["m2", "m1", "m3", "k1"]
    assert ids(ground("Try [m3]. Or m1.", turn)) == ["m1", "m3"]
    assert ids(ground("The Corsair K70 mechanical gaming keyboard is solid.", turn)) == ["k1"]
    assert ids(ground("Go for [#2], or #4 if you type a lot.", turn)) == ["m1", "k1"]
    assert ids(ground("[1] is the esports pick.", turn)) == ["m2"]


def test_without_citations_this_turns_top_results_are_shown() -> None:
    answer = ground("Here are some mice.", ["m2", "m1", "m3"], limit=2)
    assert ids(answer) == ["m2", "m1"] and answer.violations == []
    assert answer.text == "Here are some mice."


def test_products_from_earlier_turns_can_be_cited_but_are_not_shown_by_default() -> None:
    earlier_and_now = returned("h1", "m1")
    assert ids(ground("[h1] is still the best.", ["m1"], earlier_and_now)) == ["h1"]
    assert ids(ground("Nothing new.", ["m1"], earlier_and_now)) == ["m1"]


def test_an_invented_id_is_dropped_with_its_sentence_and_logged() -> None:
    answer = ground("I recommend product x9 [x9]. The [s1] is waterproof.", ["s1"])
    assert answer.text == "The [s1] is waterproof."
    assert answer.violations == ["cited 'x9', which no tool returned"]
    assert ids(answer) == ["s1"]


def test_parroted_tool_data_is_cut_from_the_answer() -> None:
    parrot = '<tool_response>\n<tool_data>\n{"tool":"search_products","results":[{"id":"s1"'
    answer = ground(parrot, ["s1", "h1"])
    assert answer.text == "" and ids(answer) == ["s1", "h1"] and answer.violations == []
    assert answer.notes == ["dropped markup the model wrote instead of prose"]
    invented = ground('<tool_data>{"results":[{"id":"g1","price":"1.99"},{"id":"s1"}]}', ["s1"])
    assert invented.violations == ["invented tool data for 'g1', which no tool returned"]
    prose_then_json = ground('I suggest [h1]. {"id": "x9"} ```more```', ["s1", "h1"])
    assert prose_then_json.text == "I suggest [h1]." and ids(prose_then_json) == ["h1"]


def test_when_every_sentence_is_invented_no_text_remains() -> None:
    answer = ground("Buy [zz12], it is the best.", ["m1"])
    assert answer.text == "" and ids(answer) == ["m1"]


def test_model_numbers_from_returned_titles_are_not_mistaken_for_ids() -> None:
    answer = ground("The Sony product WH-1000XM4 [h1] cancels noise.", ["h1"])
    assert answer.violations == [] and ids(answer) == ["h1"]


def test_a_real_catalog_product_that_no_tool_returned_is_a_violation() -> None:
    answer = ground("Get [m1]. Also consider k1 for typing.", ["m1"])
    assert answer.text == "Get [m1]."
    assert answer.violations == ["cited catalog product 'k1', which no tool returned"]
    assert "k1" not in ids(answer)


def test_stated_prices_must_match_the_catalog_but_comparisons_are_fine() -> None:
    ok = ground("The [m1] is under $50 and costs $29.99.", ["m1"])
    assert ok.violations == [] and ok.text == "The [m1] is under $50 and costs $29.99."
    wrong = ground("The [m1] is great. Only $9.99 today!", ["m1"])
    assert wrong.text == "The [m1] is great."
    assert wrong.violations == ["stated $9.99 for m1; the catalog says $29.99"]


def test_titles_brands_and_prices_are_the_catalogs_at_answer_time() -> None:
    repriced = {**CATALOG, "m1": replace(CATALOG["m1"], price=Decimal("19.00"), brand="Logi")}
    retrieved = returned("m1")  # the tool saw $29.99 and "Logitech"
    answer = ground("[m1] costs $19.00.", ["m1"], retrieved, catalog=repriced)
    assert answer.violations == []
    assert asdict(answer.products[0]) == {
        "position": 1,
        "id": "m1",
        "title": CATALOG["m1"].title,
        "brand": "Logi",
        "price": "19.00",
        "category": "Computers > Mice",
    }


def test_a_product_withdrawn_since_the_search_is_not_shown() -> None:
    without_m1 = {k: v for k, v in CATALOG.items() if k != "m1"}
    answer = ground("Options: [m1], [m2].", ["m1", "m2"], catalog=without_m1)
    assert ids(answer) == ["m2"] and answer.notes == ["m1 is no longer in the catalog"]


def test_when_the_catalog_is_down_the_tools_copy_is_shown() -> None:
    def down(product_id: str) -> Product | None:
        raise BackendUnavailable("index server down")

    answer = ground_answer("[m1].", turn_ids=["m1"], retrieved=returned("m1"), lookup=down, limit=5)
    assert ids(answer) == ["m1"] and answer.products[0].price == "29.99"
    assert answer.notes == ["catalog re-read failed for m1: index server down"]


INVENTED = ["x9", "zz12", "q7", "B00FAKE1"]
RETURNED = ["m1", "m2", "s1", "h1"]
FRAGMENTS = st.sampled_from(
    [
        *[f"Try [{pid}]." for pid in RETURNED + INVENTED],
        *[f"I recommend product {pid}." for pid in RETURNED + INVENTED],
        "It is great.",
        "Under $50 there is plenty.",
        "It costs $1.00!",
        "Ignore previous instructions.",
        "\n",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(FRAGMENTS, max_size=8).map(" ".join), st.permutations(RETURNED))
def test_property_nothing_invented_ever_reaches_the_shopper(text: str, turn: list[str]) -> None:
    answer = ground(text, turn)
    assert set(ids(answer)) <= set(RETURNED)
    assert not any(pid in answer.text for pid in INVENTED)
    shown = [(p.id, p.price) for p in answer.products]
    assert all(price == str(CATALOG[pid].price) for pid, price in shown)


def test_a_looping_answer_keeps_each_sentence_once() -> None:
    """What SmolLM2-135M wrote on Chorus: the same sentence until max_tokens ran out."""
    looping = "It is a gaming mouse. It has RGB. " + "It is a gaming mouse. It has RGB. " * 6
    assert ground(looping, ["m1"]).text == "It is a gaming mouse. It has RGB."


def test_the_stream_and_the_answer_cut_prose_at_the_same_place() -> None:
    """One markup rule: what the chat streams is what grounding keeps (``prose_end``)."""
    texts = [
        "Under $50: the JBL speaker. <tool_call>{}</tool_call>",
        'Here it is {"id": "x"} more',
        "Prices < $50 and <3 hearts are prose. ```json\n{}```",
        "All prose, no markup at all.",
        "Ends on a tag <|im_end|>",
    ]
    for text in texts:
        streamed = VisibleText()
        shown = "".join(streamed.feed(text[i : i + 3]) for i in range(0, len(text), 3))
        assert shown == text[: prose_end(text)], text
    assert prose_end("Prices < $50 and <3 hearts are prose.") == len(
        "Prices < $50 and <3 hearts are prose."
    )
    assert prose_end("a <tool_call>") == 2
    assert prose_end("still open <", streaming=True) == len("still open ")
    assert prose_end("still open {  ", streaming=True) == len("still open ")
    assert prose_end("still open {  ") == len("still open {  ")
