"""The tool-call parser: never raises, and classifies every reply as valid / repaired / invalid."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent.protocol.tool_calls import (
    ParseClass,
    ParsedToolCall,
    parse_openai_message,
    parse_tool_calls,
)
from agent.protocol.tool_schemas import TOOL_SCHEMAS


def wrap(name: str, arguments: Any) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def test_the_taught_format_is_valid() -> None:
    parsed = parse_tool_calls(wrap("search_products", {"query": "usb c charger"}), TOOL_SCHEMAS)
    assert parsed.parse_class is ParseClass.VALID
    assert parsed.calls == (
        ParsedToolCall("search_products", {"query": "usb c charger"}, "call_0"),
    )
    assert parsed.content == ""
    assert parsed.problems == ()


def test_several_calls_and_prose_around_them_are_valid() -> None:
    text = "Let me look.\n" + wrap("get_product", {"product_id": "12"}) + "\n"
    text += wrap("search_concepts", {"concepts": ["quiet", "for travel"], "max_price": 80.5})
    parsed = parse_tool_calls(text, TOOL_SCHEMAS)
    assert parsed.parse_class is ParseClass.VALID
    assert [c.name for c in parsed.calls] == ["get_product", "search_concepts"]
    assert [c.id for c in parsed.calls] == ["call_0", "call_1"]
    assert parsed.calls[1].arguments == {"concepts": ["quiet", "for travel"], "max_price": 80.5}
    assert parsed.content == "Let me look."


def test_json_without_the_wrapper_is_repaired() -> None:
    parsed = parse_tool_calls(
        'Sure: {"name": "search_products", "arguments": {"query": "tv"}} ok', TOOL_SCHEMAS
    )
    assert parsed.parse_class is ParseClass.REPAIRED
    assert parsed.calls[0].arguments == {"query": "tv"}
    assert parsed.content == "Sure:  ok"
    assert "tool call without <tool_call> wrapper" in parsed.problems


def test_truncated_json_is_closed_and_repaired() -> None:
    parsed = parse_tool_calls(
        '<tool_call>{"name": "search_products", "arguments": {"query": "gaming mou', TOOL_SCHEMAS
    )
    assert parsed.parse_class is ParseClass.REPAIRED
    assert parsed.calls[0].arguments == {"query": "gaming mou"}
    assert "missing </tool_call>" in parsed.problems


def test_truncation_after_a_key_keeps_the_complete_arguments() -> None:
    parsed = parse_tool_calls(
        '<tool_call>{"name": "search_products", "arguments": {"query": "tv", "brand": ',
        TOOL_SCHEMAS,
    )
    assert parsed.parse_class is ParseClass.REPAIRED
    assert parsed.calls[0].arguments == {"query": "tv"}


def test_python_literal_list_and_string_arguments_are_repaired() -> None:
    single_quotes = (
        "<tool_call>{'name': 'get_product', 'arguments': {'product_id': '7'}}</tool_call>"
    )
    as_list = (
        f"<tool_call>{json.dumps([{'name': 'get_product', 'arguments': {'product_id': '7'}}])}"
    )
    as_list += "</tool_call>"
    as_string = wrap("get_product", json.dumps({"product_id": "7"}))
    for text in (single_quotes, as_list, as_string):
        parsed = parse_tool_calls(text, TOOL_SCHEMAS)
        assert parsed.parse_class is ParseClass.REPAIRED, text
        assert parsed.calls[0].arguments == {"product_id": "7"}, text


def test_plain_text_is_invalid_and_kept_as_content() -> None:
    parsed = parse_tool_calls("I'm sorry, as a chatbot I can't shop.", TOOL_SCHEMAS)
    assert parsed.parse_class is ParseClass.INVALID
    assert parsed.calls == ()
    assert parsed.content == "I'm sorry, as a chatbot I can't shop."


def test_schema_checks_classify_refuse_and_keep_values_as_written() -> None:
    unknown_tool = parse_tool_calls(wrap("buy_now", {"product_id": "1"}), TOOL_SCHEMAS)
    assert unknown_tool.parse_class is ParseClass.INVALID
    missing_required = parse_tool_calls(wrap("search_products", {"brand": "Sony"}), TOOL_SCHEMAS)
    assert missing_required.parse_class is ParseClass.INVALID
    extra = parse_tool_calls(wrap("search_products", {"query": "tv", "color": "red"}), TOOL_SCHEMAS)
    assert extra.parse_class is ParseClass.REPAIRED
    assert extra.calls[0].arguments == {"query": "tv", "color": "red"}
    assert "search_products: unknown argument 'color'" in extra.problems
    coerced = parse_tool_calls(
        wrap("search_products", {"query": "tv", "max_price": "$1,200"}), TOOL_SCHEMAS
    )
    assert coerced.parse_class is ParseClass.REPAIRED
    # kept as written: the one tool-call path reads "$1,200" as 1200 for every caller
    assert coerced.calls[0].arguments == {"query": "tv", "max_price": "$1,200"}
    one_concept = parse_tool_calls(wrap("search_concepts", {"concepts": "quiet"}), TOOL_SCHEMAS)
    assert one_concept.calls[0].arguments == {"concepts": "quiet"}  # read as a list later
    assert one_concept.parse_class is ParseClass.REPAIRED


def test_null_optional_arguments_are_simply_absent() -> None:
    parsed = parse_tool_calls(wrap("search_products", {"query": "tv", "brand": None}), TOOL_SCHEMAS)
    assert parsed.parse_class is ParseClass.VALID
    assert parsed.calls[0].arguments == {"query": "tv"}


def test_without_schemas_any_name_is_accepted() -> None:
    parsed = parse_tool_calls(wrap("anything", {"x": 1}))
    assert parsed.parse_class is ParseClass.VALID
    assert parsed.calls[0].to_openai() == {
        "id": "call_0",
        "type": "function",
        "function": {"name": "anything", "arguments": '{"x": 1}'},
    }


def test_openai_replies_are_classified_by_the_same_rules() -> None:
    good = SimpleNamespace(
        function=SimpleNamespace(name="search_products", arguments='{"query": "tv"}')
    )
    assert parse_openai_message("", [good], TOOL_SCHEMAS).parse_class is ParseClass.VALID
    # What transformers serve passes through when the model broke its JSON.
    broken = {"function": {"name": "search_products", "arguments": '{"query": "tv"}}<|im_end|>'}}
    repaired = parse_openai_message(None, [broken], TOOL_SCHEMAS)
    assert repaired.parse_class is ParseClass.REPAIRED
    assert repaired.calls[0].arguments == {"query": "tv"}
    assert parse_openai_message("hello", None, TOOL_SCHEMAS).parse_class is ParseClass.INVALID


@given(st.text(max_size=400))
def test_any_text_parses_without_raising(text: str) -> None:
    parsed = parse_tool_calls(text, TOOL_SCHEMAS)
    assert (parsed.parse_class is ParseClass.INVALID) == (not parsed.calls)
    assert all(isinstance(call.arguments, dict) for call in parsed.calls)


@given(
    st.text(
        alphabet=st.sampled_from("{}[]\":,<>/tool_call name arguments 0123456789\\'\n"),
        max_size=200,
    )
)
def test_json_like_noise_parses_without_raising(text: str) -> None:
    checked, unchecked = parse_tool_calls(text, TOOL_SCHEMAS), parse_tool_calls(text)
    known = {schema["function"]["name"] for schema in TOOL_SCHEMAS}
    for parsed in (checked, unchecked):
        expected = (
            ParseClass.INVALID
            if not parsed.calls
            else ParseClass.REPAIRED
            if parsed.problems
            else ParseClass.VALID
        )
        assert parsed.parse_class is expected
        assert parsed.parse_class is ParseClass.VALID or parsed.problems  # a reason is given
        assert [c.id for c in parsed.calls] == [f"call_{i}" for i in range(len(parsed.calls))]
        assert all(isinstance(c.arguments, dict) for c in parsed.calls)
    assert {c.name for c in checked.calls} <= known  # schemas let no unknown tool through
    assert len(checked.calls) <= len(unchecked.calls)


_prices = st.one_of(
    st.integers(min_value=0, max_value=10**6),
    st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
)
_words = st.text(min_size=1, max_size=40)
_search_products = st.fixed_dictionaries(
    {"query": _words},
    optional={"brand": _words, "max_price": _prices, "min_price": _prices, "category": _words},
)
_calls = st.one_of(
    st.tuples(st.just("search_products"), _search_products),
    st.tuples(
        st.just("search_concepts"),
        st.fixed_dictionaries(
            {"concepts": st.lists(_words, min_size=1, max_size=4)},
            optional={"max_price": _prices, "brand": _words},
        ),
    ),
    st.tuples(st.just("get_product"), st.fixed_dictionaries({"product_id": _words})),
)


@given(st.lists(_calls, min_size=1, max_size=3))
def test_well_formed_calls_round_trip_as_valid(calls: list[tuple[str, dict[str, Any]]]) -> None:
    text = "\n".join(wrap(name, arguments) for name, arguments in calls)
    parsed = parse_tool_calls(text, TOOL_SCHEMAS)
    assert parsed.parse_class is ParseClass.VALID
    assert [(c.name, c.arguments) for c in parsed.calls] == calls


@given(_calls, st.data())
def test_every_truncation_is_never_valid_and_never_raises(
    call: tuple[str, dict[str, Any]], data: st.DataObject
) -> None:
    text = wrap(*call)
    cut = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    parsed = parse_tool_calls(text[:cut], TOOL_SCHEMAS)
    assert parsed.parse_class is not ParseClass.VALID
    for parsed_call in parsed.calls:
        assert parsed_call.name == call[0]


@given(_calls, st.text(alphabet=st.characters(blacklist_characters="<{["), max_size=80))
def test_a_call_inside_prose_is_found(call: tuple[str, dict[str, Any]], prose: str) -> None:
    parsed = parse_tool_calls(prose + wrap(*call) + prose, TOOL_SCHEMAS)
    assert parsed.parse_class is ParseClass.VALID
    assert (parsed.calls[0].name, parsed.calls[0].arguments) == call
    assert parsed.content == (prose + prose).strip()


def test_a_value_holding_the_tags_does_not_split_the_call() -> None:
    """Found by the round-trip property: a query of ``<tool_call>`` (a shopper's words the
    model copied) cut the call at the tag inside the JSON string."""
    for query in ("<tool_call>", "a </tool_call> b", "<tool_call>{}</tool_call>"):
        text = wrap("search_products", {"query": query})
        parsed = parse_tool_calls(text, TOOL_SCHEMAS)
        assert parsed.parse_class is ParseClass.VALID, (query, parsed.problems)
        assert [c.arguments for c in parsed.calls] == [{"query": query}]
        assert parsed.content == ""
    # two calls, prose around them, and the tag inside the first one's value
    first = wrap("search_products", {"query": "<tool_call>"})
    second = wrap("get_product", {"product_id": "p1"})
    parsed = parse_tool_calls(f"Sure. {first} and {second} done", TOOL_SCHEMAS)
    assert parsed.parse_class is ParseClass.VALID
    assert [c.name for c in parsed.calls] == ["search_products", "get_product"]
    assert parsed.content == "Sure.  and  done"
    # a body that is not whole JSON still ends at the next tag, as before
    cut = parse_tool_calls('<tool_call>{"name": "get_product", <tool_call>' + second, TOOL_SCHEMAS)
    assert [c.name for c in cut.calls] == ["get_product"]
    assert "tool call is not JSON" in cut.problems
