"""What a server writes for a model that must call one tool: the call's opening up to the
first text argument, and the closing tag once the arguments are done
(``agent.protocol.chat_template``). The real model's calls with and without it are compared in
``tests/test_model_server_e2e.py``."""

from __future__ import annotations

from types import SimpleNamespace

from agent.protocol.chat_template import (
    RESPONSE_TEMPLATE,
    TOOL_CALL_CLOSE,
    call_prefix,
    complete_call_close,
    demanded_call_opening,
    first_text_argument,
)
from agent.protocol.tool_calls import ParseClass, parse_tool_calls
from agent.protocol.tool_schemas import TOOL_SCHEMAS, schema_for

TEMPLATED = SimpleNamespace(response_template=RESPONSE_TEMPLATE)


def test_the_opening_goes_on_to_a_first_required_text_argument() -> None:
    opening = demanded_call_opening(TEMPLATED, "search_products", schema_for("search_products"))
    assert opening == call_prefix("search_products") + ' {"query": "'
    reply = complete_call_close(opening + 'cordless drill"}}</')
    parsed = parse_tool_calls(reply, TOOL_SCHEMAS)
    assert parsed.parse_class is ParseClass.VALID
    assert parsed.calls[0].arguments == {"query": "cordless drill"}


def test_a_tool_whose_first_argument_is_not_text_gets_the_call_prefix_only() -> None:
    concepts = schema_for("search_concepts")
    assert first_text_argument(concepts) is None
    assert demanded_call_opening(TEMPLATED, "search_concepts", concepts) == call_prefix(
        "search_concepts"
    )
    assert demanded_call_opening(TEMPLATED, "search_products") == call_prefix("search_products")


def test_no_opening_without_a_demanded_tool_or_a_known_call_format() -> None:
    schema = schema_for("search_products")
    assert demanded_call_opening(TEMPLATED, None, schema) == ""
    assert demanded_call_opening(SimpleNamespace(), "search_products", schema) == ""


def test_only_a_reply_cut_at_the_closing_tag_gets_it_written() -> None:
    assert complete_call_close('x"}}</').endswith(TOOL_CALL_CLOSE)
    assert complete_call_close('x"}}' + TOOL_CALL_CLOSE) == 'x"}}' + TOOL_CALL_CLOSE
    assert complete_call_close("no call here") == "no call here"
