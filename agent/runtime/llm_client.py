"""OpenAI-protocol clients built from ``LLMSettings``: the only way the agent reaches an LLM.

Both clients get the same endpoint, key, timeout and retry policy, so swapping OpenAI, vLLM,
Ollama, llama.cpp's server or the local ``transformers serve`` is a settings change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import openai
from langchain_openai import ChatOpenAI
from openai.types.chat import ChatCompletion

from agent.protocol.tool_calls import ToolCallParse, parse_openai_message
from agent.protocol.tool_schemas import TOOL_SCHEMAS
from tools.errors import BadInput
from tools.settings.llm import LLMSettings

# Local servers ignore the key, but both clients refuse to start without one.
_LOCAL_PLACEHOLDER_KEY = "no-key-needed"


def api_key_for(llm: LLMSettings) -> str:
    """The configured key, else ``OPENAI_API_KEY``, else a placeholder (local servers need none)."""
    return llm.api_key or os.environ.get("OPENAI_API_KEY") or _LOCAL_PLACEHOLDER_KEY


def _require_endpoint(llm: LLMSettings) -> str:
    if llm.base_url is None:
        raise BadInput(
            "no LLM endpoint: set SHOPAGENT_LLM_BASE_URL, or run inside "
            "agent.runtime.model_server.llm_endpoint() to serve the local model"
        )
    return llm.base_url


def openai_client(llm: LLMSettings) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=_require_endpoint(llm),
        api_key=api_key_for(llm),
        timeout=llm.timeout_s,
        max_retries=llm.max_retries,
    )


def chat_model(llm: LLMSettings, **extra: Any) -> ChatOpenAI:
    """A LangChain chat model on the same endpoint (``extra`` goes to ``ChatOpenAI``)."""
    return ChatOpenAI(
        model=llm.model,
        base_url=_require_endpoint(llm),
        api_key=api_key_for(llm),
        temperature=llm.temperature,
        max_completion_tokens=llm.max_tokens,
        timeout=llm.timeout_s,
        max_retries=llm.max_retries,
        stop=list(llm.stop) if llm.stop else None,
        **extra,
    )


def chat_completion_kwargs(llm: LLMSettings) -> dict[str, Any]:
    """The per-request settings for ``client.chat.completions.create``."""
    kwargs: dict[str, Any] = {
        "model": llm.model,
        "temperature": llm.temperature,
        "max_tokens": llm.max_tokens,
    }
    if llm.stop:
        kwargs["stop"] = list(llm.stop)
    return kwargs


def complete_with_tools(
    llm: LLMSettings,
    messages: Sequence[Mapping[str, Any]],
    *,
    tools: Sequence[Mapping[str, Any]] = TOOL_SCHEMAS,
    client: openai.OpenAI | None = None,
) -> tuple[ChatCompletion, ToolCallParse]:
    """One chat completion with tools on any OpenAI-compatible server, and its classified reply."""
    client = client or openai_client(llm)
    response = client.chat.completions.create(
        messages=[dict(m) for m in messages],  # type: ignore[misc]
        tools=[dict(t) for t in tools],  # type: ignore[misc]
        **chat_completion_kwargs(llm),
    )
    message = response.choices[0].message
    return response, parse_openai_message(message.content, message.tool_calls, tools)
