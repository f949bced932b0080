"""The search calls a turn makes, and what the graph makes of the model's.

The model's call is used when it is usable (a search with words in it, or a product id); its
filters give way to the shopper's constraints (``constraints.apply_to_call``), and each one
overridden is noted, since it is a filter the policy got wrong (``episode_reward`` charges
it). When there is no usable call, the graph writes its own (``graph_call``): the state's
words with the state's filters. A ``Decision`` is what the plan node records for the step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from langchain_core.messages import AIMessage

from agent.conversation.call_constraints import apply_to_call
from agent.conversation.constraints import Constraints
from agent.conversation.message_words import FILLER
from agent.protocol.control_tokens import strip_control_tokens
from agent.protocol.tool_calls import ParsedToolCall
from agent.protocol.tool_schemas import GET_PRODUCT, SEARCH_CONCEPTS, SEARCH_PRODUCTS

_WORDS = re.compile(r"[\w][\w'-]*")


@dataclass(frozen=True, slots=True)
class ReplyParse:
    """The model's reply as parsed: its usable calls, its class and where they came from."""

    calls: list[ParsedToolCall]
    parse_class: str
    source: Literal["native", "text", "none"]
    problems: list[str]
    content: str
    raw_tool_calls: list[dict[str, Any]]

    @property
    def attempted_call(self) -> bool:
        """Did the model try to call a tool (even if nothing usable came of it)?"""
        return bool(self.calls) or self.problems != ["no tool call"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What the plan node makes of a reply (``kind`` is recorded as the step's decision)."""

    #: tool_calls | fallback_search | reused_query | graph_query | concepts_search | relax |
    #: answer | timeout
    kind: str
    calls: list[ParsedToolCall]
    problems: list[str]
    stop_reason: str | None = None
    answer_text: str | None = None
    #: The constraints after the model's call added what the shopper backed up.
    constraints: Constraints | None = None


def usable(call: ParsedToolCall) -> bool:
    """A search with at least one word in it, or a lookup with a product id."""
    if call.name == SEARCH_PRODUCTS:
        return bool(_WORDS.search(str(call.arguments.get("query") or "")))
    if call.name == SEARCH_CONCEPTS:
        concepts = call.arguments.get("concepts")
        return bool(concepts) and bool(_WORDS.search(json.dumps(concepts)))
    return call.name == GET_PRODUCT and bool(call.arguments.get("product_id"))


def graph_call(
    constraints: Constraints, call_id: str, respell: Callable[[str], str]
) -> ParsedToolCall:
    """The graph's own search: the state's words in the catalog's spelling (``respell``: the
    toolbox's, so "post insurts" searches "post inserts" as the tool path's ``copy`` does)
    with the state's filters."""
    query = respell(constraints.query())
    return ParsedToolCall(SEARCH_PRODUCTS, apply_to_call({"query": query}, constraints), call_id)


def call_message(content: str, calls: Sequence[ParsedToolCall]) -> AIMessage:
    return AIMessage(
        content=content,
        tool_calls=[
            {"name": c.name, "args": c.arguments, "id": c.id, "type": "tool_call"} for c in calls
        ],
    )


def overridden(model: Mapping[str, Any], applied: Mapping[str, Any]) -> list[str]:
    """The model's filters the state replaced: each is a constraint the policy got wrong."""
    notes = []
    for key in ("brand", "category", "min_price", "max_price", "sort"):
        said, kept = model.get(key), applied.get(key)
        if said in (None, "") or _same(said, kept):
            continue
        notes.append(f"overridden: the model's {key} {said!r} (the shopper's: {kept!r})")
    return notes


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) or isinstance(b, list | tuple):  # brands: any order
        return _names(a) == _names(b)
    try:
        return Decimal(str(a).lstrip("$")) == Decimal(str(b))
    except Exception:
        return str(a).strip().lower() == str(b).strip().lower()


def _names(value: Any) -> set[str]:
    values = value if isinstance(value, list | tuple) else [value]
    return {str(v).strip().lower() for v in values if v not in (None, "")}


def shares_words(query: str, constraints: Constraints) -> bool:
    """Does a model query share a word (first four letters) with the request? A query that
    shares none is not about what the shopper asked for."""
    wanted = {w[:4] for w in content_words(constraints.query())}
    if not wanted:
        return True
    return any(w[:4] in wanted for w in content_words(query))


def content_words(text: str) -> list[str]:
    words = [w.lower() for w in _WORDS.findall(strip_control_tokens(text))]
    return [w for w in dict.fromkeys(words) if w not in FILLER and not w.isdigit() and len(w) > 1]
