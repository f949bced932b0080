"""One turn of the trajectory log as an OpenAI chat fine-tuning example, and the checks that
OpenAI's fine-tuning API would apply to it.

Kept apart from the other export formats because it has its own rules: a record becomes a
conversation the model should learn from (the prompt it saw, then its tool call or grounded
answer), and a line is written only if OpenAI would accept it -- known roles and keys, the
``weight`` convention, a user message to answer, an assistant message last.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from agent.protocol.tool_schemas import TOOL_NAMES, tool_schemas

MESSAGE_KEYS = {"role", "content", "name", "tool_calls", "tool_call_id", "weight", "function_call"}
_ROLES = {"system", "user", "assistant", "tool"}


def openai_chat_example(record: Mapping[str, Any]) -> dict[str, Any]:
    """The turn as a chat fine-tuning example, with the tools.

    A chat turn: the last step's prompt (plus its tool round if the turn ended on one) and the
    grounded final answer. A rollout (one step, no answer): the prompt and the tool call the
    model wrote, which is what the sample teaches.
    """
    steps = record.get("steps") or []
    tail: list[dict[str, Any]] = []
    if steps:
        last = steps[-1]
        prompt = [dict(m) for m in last["prompt_messages"]]
        calls = last.get("parsed_calls") or []
        if last.get("decision") in ("tool_calls", "fallback_search"):
            if last.get("output_messages"):
                prompt += [dict(m) for m in last["output_messages"]]
            elif calls and not record.get("final_answer"):
                tail = [{"role": "assistant", "content": "", "tool_calls": _openai_calls(calls)}]
    else:
        prompt = [{"role": "user", "content": record.get("user_text", "")}]
    if not tail:
        tail = [{"role": "assistant", "content": record.get("final_answer", "")}]
    last_user = max((i for i, m in enumerate(prompt) if m.get("role") == "user"), default=-1)
    messages = []
    for index, message in enumerate(prompt):
        clean = {k: v for k, v in message.items() if k in MESSAGE_KEYS}
        clean["content"] = _text(clean.get("content"))
        if clean["role"] == "assistant":
            clean["weight"] = 1 if index > last_user else 0
        messages.append(clean)
    messages += [{**message, "weight": 1} for message in tail]
    return {"messages": messages, "tools": tool_schemas()}


def _openai_calls(calls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": str(call.get("id") or f"call_{index}"),
            "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}))},
        }
        for index, call in enumerate(calls)
    ]


def validate_chat_example(example: Any) -> list[str]:
    """Problems that would make OpenAI reject the line as a chat fine-tuning example.

    The messages and tools must validate against the ``openai`` package's own request types,
    and the fine-tuning rules hold: known roles and keys only, string content, ``weight`` 0/1
    on assistant messages only, at least one assistant message, the last one an assistant's,
    tool calls with JSON-object arguments naming a declared tool, and every tool message
    answering a call made earlier.
    """
    from pydantic import ValidationError

    if not isinstance(example, dict) or not isinstance(example.get("messages"), list):
        return ["not an object with a messages list"]
    messages = example["messages"]
    if not messages:
        return ["messages is empty"]
    problems: list[str] = []
    try:
        messages_adapter, tools_adapter = _openai_adapters()
        messages_adapter.validate_python(
            [{k: v for k, v in m.items() if k != "weight"} for m in messages]
        )
        tools_adapter.validate_python(example.get("tools", []))
    except ValidationError as error:
        problems.append(f"not OpenAI chat messages/tools: {error.errors()[0]['msg']}")
    declared = {t["function"]["name"] for t in example.get("tools", [])} or set(TOOL_NAMES)
    open_calls: set[str] = set()
    for index, message in enumerate(messages):
        where = f"message {index}"
        unknown = set(message) - MESSAGE_KEYS
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        role = message.get("role")
        if role not in _ROLES:
            problems.append(f"{where}: unknown role {role!r}")
        if not isinstance(message.get("content"), str) and not message.get("tool_calls"):
            problems.append(f"{where}: content is not a string")
        if "weight" in message and (role != "assistant" or message["weight"] not in (0, 1)):
            problems.append(f"{where}: weight must be 0 or 1, on assistant messages only")
        for call in message.get("tool_calls") or []:
            function = call.get("function", {})
            if function.get("name") not in declared:
                problems.append(f"{where}: call to undeclared tool {function.get('name')!r}")
            try:
                arguments = json.loads(function.get("arguments", ""))
            except (TypeError, json.JSONDecodeError):
                arguments = None
            if not isinstance(arguments, dict):
                problems.append(f"{where}: tool call arguments are not a JSON object")
            open_calls.add(call.get("id"))
        if role == "tool" and message.get("tool_call_id") not in open_calls:
            problems.append(f"{where}: tool message answers no earlier tool call")
    roles = [m.get("role") for m in messages]
    if "user" not in roles:
        problems.append("no user message: the example would teach an answer to nothing")
    if "assistant" not in roles:
        problems.append("no assistant message to learn from")
    elif roles[-1] != "assistant":
        problems.append("the last message is not the assistant's")
    return problems


@functools.cache
def _openai_adapters() -> tuple[Any, Any]:
    """Validators for the ``openai`` package's request types (slow to build: built once)."""
    from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam
    from pydantic import TypeAdapter

    return (
        TypeAdapter(list[ChatCompletionMessageParam]),
        TypeAdapter(list[ChatCompletionFunctionToolParam]),
    )


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return str(content)
