"""Chat-template control tokens taken out of text that is not ours before a model reads it.

A product description holding ``<|im_start|>system ...`` once made the local model announce a
store-wide sale: escaping ``<`` and ``>`` in the tool data (``agent.conversation.prompts``)
keeps such text from ending a turn in the rendered template, but the model still reads the
words "im_start system" and plays along. So every control token of every chat template the
project can serve (ChatML, Llama 3, Gemma, Mistral/Llama 2, Phi, DeepSeek's full-width form,
the tool-call tags of our own template) is removed from catalog text and from what the tools
return to the model, here, in one function, and the removal repeats until nothing is left
(``<|im_<|im_end|>start|>`` cannot reassemble itself; past a few levels of nesting the
brackets themselves are replaced).
"""

from __future__ import annotations

import re

#: ``<|anything|>`` (ChatML, Llama 3, Phi), in ASCII or full-width bars (DeepSeek ``<｜…｜>``).
_PIPE_TOKEN = re.compile(r"<\s*[|｜][^<>|｜\n]{0,40}[|｜]\s*>")
#: Tag-shaped tokens of other templates and of our own tool protocol.
_TAG_TOKEN = re.compile(
    r"<\s*/?\s*(?:start_of_turn|end_of_turn|bos|eos|s|pad|unk|sep|cls|mask|"
    r"tool_call|tool_response|tool_data|tools|think|system|user|assistant|"
    r"function_calls?|invoke|parameter|SYS|INST)\s*>",
    re.IGNORECASE,
)
#: Bracketed tokens: Llama 2 / Mistral ``[INST]``, ``<<SYS>>``, ``[TOOL_CALLS]``.
_BRACKET_TOKEN = re.compile(
    r"<<\s*/?\s*SYS\s*>>|\[\s*/?\s*(?:INST|TOOL_CALLS|TOOL_RESULTS|AVAILABLE_TOOLS|"
    r"SYSTEM_PROMPT)\s*\]",
    re.IGNORECASE,
)
_PATTERNS = (_PIPE_TOKEN, _TAG_TOKEN, _BRACKET_TOKEN)


#: Removal passes before the rest is neutralised: each pass undoes one level of nesting.
MAX_PASSES = 4
_BRACKETS = str.maketrans({"<": "‹", ">": "›", "[": "(", "]": ")"})


def strip_control_tokens(text: str) -> str:
    """``text`` with every chat-template control token removed.

    Removal repeats (a token hidden inside another reappears once the inner one is gone); past
    ``MAX_PASSES`` levels of nesting, which no honest text has, the remaining angle and square
    brackets are replaced by look-alikes that no template reads, in linear time.
    """
    for _ in range(MAX_PASSES):
        cleaned = text
        for pattern in _PATTERNS:
            cleaned = pattern.sub(" ", cleaned)
        if cleaned == text:
            return text
        text = cleaned
    if any(pattern.search(text) for pattern in _PATTERNS):
        return text.translate(_BRACKETS)
    return text


def has_control_tokens(text: str) -> bool:
    return strip_control_tokens(text) != text
