"""Talking to the chat model: streaming a reply, reading its tool calls, keeping history valid.

Why apart from the nodes: this is everything that depends on how LangChain chat models and
OpenAI-compatible servers behave (streamed chunks, native versus text tool calls, servers
that refuse a history with unanswered calls), so the nodes deal only in prompts, replies and
``ReplyParse`` values.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    ToolMessage,
    message_chunk_to_message,
)
from langchain_core.runnables import Runnable
from langgraph.config import get_stream_writer

from agent.conversation.events import TextChunk
from agent.conversation.grounding import prose_end
from agent.conversation.search_calls import ReplyParse
from agent.protocol.tool_calls import parse_openai_message, parse_tool_calls
from agent.protocol.tool_schemas import TOOL_SCHEMAS
from tools.text import valid_text


def model_id_of(llm: BaseChatModel) -> str:
    """The model's name as its client knows it (what the trajectory records)."""
    for attribute in ("model_name", "model", "model_id"):
        value = getattr(llm, attribute, None)
        if isinstance(value, str) and value:
            return value
    return type(llm).__name__


def bind_tools(
    llm: BaseChatModel, schemas: Sequence[Mapping[str, Any]], *, tool_choice: str | None = None
) -> Runnable:
    """The model with ``schemas`` offered as tools (``tool_choice``: the one it must call); a
    model without tool support as it is."""
    try:
        if tool_choice is not None:
            return llm.bind_tools(list(schemas), tool_choice=tool_choice)
        return llm.bind_tools(list(schemas))
    except NotImplementedError:  # tools then come back as text, which plan parses anyway
        return llm


def generate(
    model: Runnable, prompt: list[AnyMessage], deadline: float, *, show: bool = True
) -> tuple[AIMessage, bool]:
    """Stream the reply, stopping at the deadline; with ``show``, stream its prose as it comes
    (never tool-call markup). Without it nothing is streamed: the shopper will not see it."""
    writer = get_stream_writer()
    visible = VisibleText()
    merged: AIMessageChunk | AIMessage | None = None
    timed_out = False
    # The request may take only what is left of the turn (an OpenAI request option).
    for chunk in model.stream(prompt, timeout=max(1.0, deadline - time.time())):
        merged = chunk if merged is None else merged + chunk  # type: ignore[operator]
        if show and isinstance(chunk.content, str) and chunk.content:
            shown = visible.feed(chunk.content)
            if shown:
                writer(TextChunk(shown))
        if time.time() >= deadline:
            timed_out = True
            break
    if merged is None:
        return AIMessage(content=""), timed_out
    message = message_chunk_to_message(merged) if isinstance(merged, AIMessageChunk) else merged
    return _valid_content(message), timed_out  # type: ignore[arg-type]


def _valid_content(message: AIMessage) -> AIMessage:
    """The reply with every lone surrogate made U+FFFD: model text is data, and one unpaired
    ``\ud800`` cannot be written as UTF-8, so it would lose the whole turn (its checkpoint, its
    log record, its place in ``/history``)."""
    if isinstance(message.content, str) and message.content != valid_text(message.content):
        return message.model_copy(update={"content": valid_text(message.content)})
    return message


class VisibleText:
    """The part of streamed text that is prose, cut by grounding's own rule (``prose_end``):
    tool-call markup, parroted tool data and bare JSON calls are never shown."""

    def __init__(self) -> None:
        self.text = ""
        self.emitted = 0

    def feed(self, chunk: str) -> str:
        self.text += chunk
        safe = prose_end(self.text, streaming=True)
        out = self.text[self.emitted : safe] if safe > self.emitted else ""
        self.emitted = max(self.emitted, safe)
        return out


def parse_reply(message: AIMessage, *, id_prefix: str) -> ReplyParse:
    """Tool calls from a reply: the server's ``tool_calls`` if any, else parsed from the text.

    Native calls go through ``parse_openai_message`` (written back into the taught
    ``<tool_call>`` form and parsed with the prose), so a reply gets the same class whether the
    server or this node parsed it. Call ids are made unique per turn and step.
    """
    raw_native = [*message.tool_calls, *message.invalid_tool_calls]
    raw = [openai_call(call) for call in raw_native]
    if raw:
        parsed = parse_openai_message(message.text, raw, TOOL_SCHEMAS)
        source: Literal["native", "text", "none"] = "native"
    else:
        parsed = parse_tool_calls(message.text, TOOL_SCHEMAS)
        source = "text" if parsed.calls else "none"
    calls = [replace(call, id=f"{id_prefix}_{i}") for i, call in enumerate(parsed.calls)]
    return ReplyParse(
        calls, str(parsed.parse_class), source, list(parsed.problems), parsed.content, raw
    )


def openai_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """A LangChain tool call (parsed or invalid) as the OpenAI ``tool_calls`` item."""
    args = call.get("args")
    return {
        "id": call.get("id") or "",
        "type": "function",
        "function": {
            "name": call.get("name") or "",
            "arguments": args if isinstance(args, str) else json.dumps(args or {}),
        },
    }


def close_interrupted_calls(messages: Sequence[AnyMessage]) -> list[AIMessage]:
    """Replacements for assistant messages whose tool calls never got results.

    A turn interrupted mid-tools (Ctrl-C, a crash) leaves such calls in the history, and
    OpenAI-compatible servers refuse a history with unanswered calls; the replacement (same
    id, so it stays in place) keeps only the calls that were answered.
    """
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    fixed = []
    for message in messages:
        if isinstance(message, AIMessage) and message.tool_calls:
            kept = [c for c in message.tool_calls if c["id"] in answered]
            if len(kept) != len(message.tool_calls):
                content = message.content or "(interrupted before the search finished)"
                fixed.append(AIMessage(content=content, tool_calls=kept, id=message.id))
    return fixed


def is_answer(message: AnyMessage) -> bool:
    """An assistant message with no tool calls: the model's answer."""
    return isinstance(message, AIMessage) and not message.tool_calls


def new_message_id() -> str:
    return uuid.uuid4().hex
