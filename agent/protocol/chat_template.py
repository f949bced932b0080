"""The tools-capable chat template and the matching response template, installed on a tokenizer.

One template serves both paths: ``transformers serve`` renders it for HTTP requests and parses
replies with ``RESPONSE_TEMPLATE`` into OpenAI ``tool_calls``; in-process generation for
rollouts renders the very same template, so what RL trains on is what the server shows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib.resources import files
from typing import Any

TEMPLATE_VERSION = 3
TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
#: The closing tag's first token (``call_close_start_id``).
CLOSE_START = "</"
TOOL_RESPONSE_OPEN = "<tool_response>"
#: The template's end of a turn. SmolLM2's tokenizer has it as its end-of-sequence token; a
#: model of another family (Gemma 3) reads it as plain text and learns to write it after a
#: call, so generation stops on the string there (``agent.runtime.generation``).
TURN_END = "<|im_end|>"
#: Where a reply ends early: tool results come only from the tools, so a model that starts
#: writing one (a 135M model parrots the search results it just read) has stopped answering.
STOP_STRINGS: tuple[str, ...] = (TOOL_RESPONSE_OPEN,)

# transformers' declarative response parser (transformers.utils.chat_parsing): everything after
# the last "<|im_start|>assistant\n" is the reply; each
# <tool_call>{"name": N, "arguments": A}</tool_call> becomes one OpenAI tool call, the rest is
# content. The name is captured by the opening pattern and the arguments are parsed leniently
# (`allow_non_json`) on purpose: with a plain "json" field, as in transformers' built-in Qwen2
# fallback, one malformed call from a small model makes the server answer HTTP 500. Here broken
# arguments reach the client as a string (which agent.protocol.tool_calls classifies), and a
# call in any other shape stays in the content.
RESPONSE_TEMPLATE: dict[str, Any] = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "tool_calls": {
            "open_pattern": (
                r'\s*<tool_call>\s*\{\s*"name"\s*:\s*"(?P<name>[^"\\]+)"\s*,\s*"arguments"\s*:\s*'
            ),
            "close_pattern": r"\s*\}\s*</tool_call>",
            "repeats": True,
            "content": "json",
            "content_args": {"allow_non_json": True},
            "transform": {
                "type": "function",
                "function": {"name": "{name}", "arguments": "{content}"},
            },
        },
        "content": {
            "close_pattern": r"\s*(?:<\|im_end\|>|<\|endoftext\|>)",
            "content": "text",
        },
    },
}


def tool_call_text(name: str, arguments: Mapping[str, Any]) -> str:
    """One call written exactly as the template teaches the model to write it.

    ``<tool_call>{"name": N, "arguments": A}</tool_call>`` with Python's default JSON
    separators (as in the template's examples and ``writer_prompts.EXPAND_EXAMPLE``) and
    non-ASCII kept as written (a model writes ``é``, not ``\\u00e9``): a completion built here
    for training is the text the model would generate, and parses as ``ParseClass.VALID``.
    """
    body = json.dumps({"name": name, "arguments": dict(arguments)}, ensure_ascii=False)
    return f"{TOOL_CALL_OPEN}{body}{TOOL_CALL_CLOSE}"


def call_prefix(name: str) -> str:
    """The start of a call to ``name``, as ``tool_call_text`` writes it, up to the arguments.

    A server asked for this tool (OpenAI ``tool_choice``) puts it in the reply itself instead
    of having the model write it token by token (17 of a writer call's ~30 tokens); it ends
    before the space that opens the arguments, where the model's own next token starts.
    """
    return f'{TOOL_CALL_OPEN}{{"name": {json.dumps(name, ensure_ascii=False)}, "arguments":'


def demanded_call_opening(
    tokenizer: Any, tool: str | None, schema: Mapping[str, Any] | None = None
) -> str:
    """What is written for a model that must call ``tool`` before it writes a token: the
    call's opening (``call_prefix``) when its tokenizer writes calls in the tools template
    (the only format whose call start is known: it has our ``response_template``), else ""
    (no tool demanded, or a model of another chat format). With the tool's ``schema``, the
    opening goes on to its first required argument when that is text
    (``first_text_argument``): ``{"query": "``, so the model writes only the words.

    The CTranslate2 server and the evals' in-process writer both write it, so a demanded call
    is the same in chat and eval. Why the argument's name too: the writer always writes the
    query first (every call it was trained on does), and those four tokens are a fifth of a
    call's generation."""
    if tool is None or getattr(tokenizer, "response_template", None) is None:
        return ""
    first = first_text_argument(schema) if schema is not None else None
    if first is None:
        return call_prefix(tool)
    return f'{call_prefix(tool)} {{{json.dumps(first, ensure_ascii=False)}: "'


def first_text_argument(schema: Mapping[str, Any]) -> str | None:
    """The first required argument of a tool (an OpenAI tool dict or its ``function``) when
    its value is a string, else None."""
    function = schema.get("function", schema)
    if not isinstance(function, Mapping):
        return None
    parameters = function.get("parameters") or {}
    required = parameters.get("required") or ()
    if not required:
        return None
    first = str(required[0])
    kind = (parameters.get("properties") or {}).get(first, {}).get("type")
    return first if kind == "string" else None


def call_close_start_id(tokenizer: Any) -> int | None:
    """The token that starts a call's closing tag (``</`` of ``</tool_call>``) when the
    tokenizer writes it as a token of its own, else None.

    Why: a reply to a demanded tool is one call, complete once its arguments close; the
    closing tag's remaining tokens and the turn's end (5 of a writer call's ~12 generated
    tokens) can be written for the model (``complete_call_close``), as its opening is.
    """
    if getattr(tokenizer, "response_template", None) is None:
        return None
    ids = tokenizer.encode('"}}' + TOOL_CALL_CLOSE, add_special_tokens=False)
    return next((i for i in ids if tokenizer.decode([i]) == CLOSE_START), None)


def complete_call_close(text: str) -> str:
    """A reply cut at the start of the call's closing tag, with the tag written out."""
    if text.endswith(CLOSE_START):
        return text + TOOL_CALL_CLOSE[len(CLOSE_START) :]
    return text


def tools_chat_template() -> str:
    """The Jinja source of the template (shipped as package data)."""
    return (files("agent.protocol.templates") / "tools_chat_template.jinja").read_text(
        encoding="utf-8"
    )


def install_tools_template(tokenizer: Any) -> None:
    """Give ``tokenizer`` both templates (``save_pretrained`` then writes them to the directory).

    A tokenizer that puts its beginning-of-sequence token before every text (Gemma's
    ``add_bos_token``) gets the template with ``{{ bos_token }}`` in front: prompts are rendered
    as text and tokenized without special tokens (generation, TRL's trainers), and Gemma without
    its ``<bos>`` writes noise. SmolLM2 adds none, so its prompts are unchanged.
    """
    template = tools_chat_template()
    if getattr(tokenizer, "add_bos_token", False) and getattr(tokenizer, "bos_token", None):
        template = "{{- bos_token -}}\n" + template
    tokenizer.chat_template = template
    tokenizer.response_template = RESPONSE_TEMPLATE
