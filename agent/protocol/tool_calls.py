"""Tool-call parsing that never raises on what a small model emits, and says how clean it was.

The template teaches ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``. A 135M model
also writes bare JSON, truncated JSON, Python dicts, lists of calls, or prose. Every reply gets a
``ParseClass``: VALID (exactly the taught format, arguments matching the schema), REPAIRED (at
least one usable call, but something had to be fixed or dropped), INVALID (no usable call). The
RL reward reads that class, so the rules are strict and documented case by case below.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from agent.protocol.chat_template import TOOL_CALL_CLOSE, TOOL_CALL_OPEN


class ParseClass(StrEnum):
    VALID = "valid"
    REPAIRED = "repaired"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class ParsedToolCall:
    name: str
    arguments: dict[str, Any]
    id: str

    def to_openai(self) -> dict[str, Any]:
        """The call as an OpenAI ``tool_calls`` entry (arguments as a JSON string)."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments)},
        }


@dataclass(frozen=True, slots=True)
class ToolCallParse:
    """What one reply contained: the usable calls, the prose around them, and how clean it was."""

    calls: tuple[ParsedToolCall, ...]
    parse_class: ParseClass
    content: str
    problems: tuple[str, ...] = field(default=())


_REGION = re.compile(
    re.escape(TOOL_CALL_OPEN)
    + r"(?P<body>.*?)(?P<close>"
    + re.escape(TOOL_CALL_CLOSE)
    + r"|(?="
    + re.escape(TOOL_CALL_OPEN)
    + r")|\Z)",
    re.DOTALL,
)
_JSON = json.JSONDecoder()
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_MAX_CUTS = 200
_MAX_BARE_STARTS = 20


def parse_tool_calls(
    text: str, tools: Sequence[Mapping[str, Any]] | None = None, *, id_prefix: str = "call"
) -> ToolCallParse:
    """Parse one assistant reply. ``tools`` (OpenAI schemas) enables name and argument checks."""
    schemas = _schemas_by_name(tools) if tools is not None else None
    problems: list[str] = []
    raw_calls: list[Any] = []
    regions = _call_regions(text)
    if regions:
        outside: list[str] = []
        position = 0
        for start, end, body, closed in regions:
            outside.append(text[position:start])
            position = end
            if not closed:
                problems.append("missing </tool_call>")
            value, repaired = _load_json(body)
            if value is _UNPARSABLE:
                problems.append("tool call is not JSON")
                continue
            if repaired:
                problems.append("tool call JSON repaired")
            raw_calls.extend(_as_list(value, problems))
        outside.append(text[position:])
        content = "".join(outside).strip()
    else:
        value, start, end = _find_bare_json(text)
        if value is not _UNPARSABLE:
            problems.append("tool call without <tool_call> wrapper")
            raw_calls.extend(_as_list(value, problems))
            content = (text[:start] + text[end:]).strip() if raw_calls else text.strip()
        else:
            content = text.strip()

    calls: list[ParsedToolCall] = []
    for raw in raw_calls:
        call = _normalise(raw, schemas, problems, f"{id_prefix}_{len(calls)}")
        if call is not None:
            calls.append(call)
    if not calls:
        if not problems:
            problems.append("no tool call")
        return ToolCallParse((), ParseClass.INVALID, content, tuple(problems))
    parse_class = ParseClass.REPAIRED if problems else ParseClass.VALID
    return ToolCallParse(tuple(calls), parse_class, content, tuple(problems))


def _call_regions(text: str) -> list[tuple[int, int, str, bool]]:
    """``(start, end, body, closed)`` of each ``<tool_call>`` region, in order.

    A body that is one JSON value followed by ``</tool_call>`` is taken whole, so a string
    value that holds the tag itself (a shopper's ``<tool_call>`` the model copied into its
    query) does not split the call. Any other body ends at the next ``</tool_call>`` or
    ``<tool_call>``, or at the end of the reply, as the model left it.
    """
    regions: list[tuple[int, int, str, bool]] = []
    position = 0
    while (start := text.find(TOOL_CALL_OPEN, position)) >= 0:
        body_start = start + len(TOOL_CALL_OPEN)
        end = _whole_json_end(text, body_start)
        if end is not None:
            regions.append((start, end, text[body_start : end - len(TOOL_CALL_CLOSE)], True))
        else:
            match = _REGION.match(text, start)
            assert match is not None  # the pattern starts with the tag found at ``start``
            end = match.end()
            regions.append((start, end, match.group("body"), bool(match.group("close"))))
        position = end
    return regions


def _whole_json_end(text: str, body_start: int) -> int | None:
    """Where the region ends when its body is exactly one JSON value and the closing tag."""
    index = body_start
    while index < len(text) and text[index].isspace():
        index += 1
    try:
        _, after = _JSON.raw_decode(text, index)
    except ValueError:
        return None
    while after < len(text) and text[after].isspace():
        after += 1
    return after + len(TOOL_CALL_CLOSE) if text.startswith(TOOL_CALL_CLOSE, after) else None


def parse_openai_message(
    content: str | None,
    tool_calls: Sequence[Any] | None,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> ToolCallParse:
    """Classify a reply that came back through the OpenAI protocol, by the same rules.

    The server's ``tool_calls`` (objects from ``openai`` or plain dicts, arguments as a string,
    possibly malformed) are written back into the taught format and parsed with the prose, so a
    reply gets the same class over HTTP as from in-process generation.
    """
    parts = [content] if content else []
    for call in tool_calls or []:
        function = _get(call, "function")
        name, arguments = _get(function, "name"), _get(function, "arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        body = f'{{"name": {json.dumps(name)}, "arguments": {arguments}}}'
        parts.append(TOOL_CALL_OPEN + body + TOOL_CALL_CLOSE)
    return parse_tool_calls("\n".join(parts), tools)


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


class _Unparsable:
    pass


_UNPARSABLE: Any = _Unparsable()


def _as_list(value: Any, problems: list[str]) -> list[Any]:
    if isinstance(value, list):
        problems.append("several calls in one list")
        return value
    return [value]


def _find_bare_json(text: str) -> tuple[Any, int, int]:
    """The first JSON object in unwrapped text that looks like a call (has a ``name``)."""
    decoder = json.JSONDecoder()
    for attempt, match in enumerate(re.finditer(r"[{\[]", text)):
        if attempt == _MAX_BARE_STARTS:
            break
        start = match.start()
        try:
            value, end = decoder.raw_decode(text, start)
        except (json.JSONDecodeError, RecursionError):
            if "name" not in text[start:]:
                continue
            value, _ = _load_json(text[start:])
            if value is not _UNPARSABLE and _looks_like_call(value):
                return value, start, len(text)
            continue
        if _looks_like_call(value):
            return value, start, end
    return _UNPARSABLE, 0, 0


def _looks_like_call(value: Any) -> bool:
    items = value if isinstance(value, list) else [value]
    named = bool(items) and all(isinstance(item, dict) and "name" in item for item in items)
    return named or (isinstance(value, dict) and isinstance(value.get("function"), dict))


def _load_json(body: str) -> tuple[Any, bool]:
    """Strict JSON first; then fences, trailing commas, truncation and Python literals."""
    try:
        return json.loads(body), False
    except (json.JSONDecodeError, RecursionError):
        pass
    text = _TRAILING_COMMA.sub(r"\1", _FENCE.sub("", body)).strip()
    for candidate in _truncation_repairs(text):
        try:
            return json.loads(candidate), True
        except (json.JSONDecodeError, RecursionError):
            continue
    try:
        return ast.literal_eval(text), True
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _UNPARSABLE, False


def _truncation_repairs(text: str) -> Iterable[str]:
    """``text`` closed as it is, then cut back to ever earlier value boundaries and closed."""
    if not text.startswith(("{", "[")):
        return
    yield text
    yield _close(text)
    cuts = [i for i in range(len(text) - 1, 0, -1) if text[i] == "," or text[i - 1] in '}]"']
    for cut in cuts[:_MAX_CUTS]:
        yield _close(text[:cut])


def _close(prefix: str) -> str:
    """Close an open string and every open bracket of a JSON prefix."""
    stack: list[str] = []
    in_string = escaped = False
    for char in prefix:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]" and stack:
            stack.pop()
    out = (prefix[:-1] if escaped else prefix) + ('"' if in_string else "")
    out = out.rstrip().removesuffix(",").rstrip()
    if out.endswith(":"):
        out += " null"
    return out + "".join(reversed(stack))


def _normalise(
    raw: Any,
    schemas: Mapping[str, Mapping[str, Any]] | None,
    problems: list[str],
    call_id: str,
) -> ParsedToolCall | None:
    """One decoded value -> a call, or None (with the reason in ``problems``)."""
    if not isinstance(raw, dict):
        problems.append("tool call is not an object")
        return None
    if isinstance(raw.get("function"), dict):
        problems.append("OpenAI-shaped call")
        raw = raw["function"]
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problems.append("tool call without a name")
        return None
    arguments: Any = raw.get("arguments")
    if arguments is None:
        for alias in ("parameters", "args", "input"):
            if alias in raw:
                problems.append(f"arguments under {alias!r}")
                arguments = raw[alias]
                break
        else:
            problems.append("tool call without arguments")
            arguments = {}
    if isinstance(arguments, str):
        problems.append("arguments as a JSON string")
        arguments, _ = _load_json(arguments)
    if not isinstance(arguments, dict):
        problems.append(f"{name}: arguments are not an object")
        return None
    if schemas is not None:
        if name not in schemas:
            problems.append(f"unknown tool {name!r}")
            return None
        checked = _check_arguments(name, arguments, schemas[name], problems)
        if checked is None:
            return None
        arguments = checked
    return ParsedToolCall(name=name, arguments=arguments, id=call_id)


def _check_arguments(
    name: str, arguments: dict[str, Any], parameters: Mapping[str, Any], problems: list[str]
) -> dict[str, Any] | None:
    """Classify the arguments against the schema; refuse only a missing required one.

    The values are kept exactly as written: reading them (a price as ``"$1,299"``, a list
    written as one string, an unknown argument) is ``agent.protocol.tool_search``'s job, the
    same for a call the server parsed as for one parsed here. What did not conform is noted in
    ``problems``, which makes the call ``repaired`` rather than ``valid``.
    """
    properties: Mapping[str, Any] = parameters.get("properties", {})
    required = set(parameters.get("required", []))
    kept: dict[str, Any] = {}
    for key, value in arguments.items():
        if key not in properties:
            problems.append(f"{name}: unknown argument {key!r}")
        elif value is None and key not in required:
            continue
        else:
            fixed, ok = _conform(value, properties[key])
            if fixed is _UNPARSABLE:
                problems.append(f"{name}: argument {key!r} has the wrong type")
            elif not ok:
                problems.append(f"{name}: argument {key!r} needs coercion")
        kept[key] = value
    missing = required - kept.keys()
    if missing:
        problems.append(f"{name}: missing required {sorted(missing)}")
        return None
    return kept


def _conform(value: Any, schema: Mapping[str, Any]) -> tuple[Any, bool]:
    """``(value, True)`` if it matches, ``(coerced, False)`` if fixable, else ``_UNPARSABLE``."""
    kinds = schema.get("type")
    if kinds is None:
        return value, True
    for kind in [kinds] if isinstance(kinds, str) else list(kinds):
        if _is_kind(value, kind, schema):
            return value, True
    for kind in [kinds] if isinstance(kinds, str) else list(kinds):
        coerced = _coerce(value, kind, schema)
        if coerced is not _UNPARSABLE:
            return coerced, False
    return _UNPARSABLE, False


def _is_kind(value: Any, kind: str, schema: Mapping[str, Any]) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        item_schema = schema.get("items", {})
        return isinstance(value, list) and all(_conform(v, item_schema)[1] for v in value)
    return True


def _coerce(value: Any, kind: str, schema: Mapping[str, Any]) -> Any:
    if kind in ("number", "integer") and isinstance(value, str):
        cleaned = value.strip().lstrip("$").replace(",", "")
        try:
            number = float(cleaned)
        except ValueError:
            return _UNPARSABLE
        if kind == "integer":
            return int(number) if number.is_integer() else _UNPARSABLE
        return int(number) if number.is_integer() else number
    if kind == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if kind == "array":
        item_schema = schema.get("items", {})
        items = value if isinstance(value, list) else [value]
        fixed = [_conform(item, item_schema)[0] for item in items]
        return _UNPARSABLE if any(f is _UNPARSABLE for f in fixed) or not fixed else fixed
    return _UNPARSABLE


def _schemas_by_name(tools: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for tool in tools:
        function = tool.get("function", tool)
        out[function["name"]] = function.get("parameters", {})
    return out
