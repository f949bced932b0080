"""OpenAI-protocol clients built from ``LLMSettings``: the only way the agent reaches an LLM.

Both clients get the same endpoint, key, timeout and retry policy, so swapping OpenAI, vLLM,
Ollama, llama.cpp's server or the local ``transformers serve`` is a settings change.

A chat turn has a deadline (``AgentLimits.turn_timeout_s``), and a model server that accepts
the connection and never answers must not outlive it: with the defaults (120 s per request,
2 retries) a hung server once held a turn 363 s. ``chat_model(llm, turn_timeout_s=…)`` keeps
each request within the turn and drops the retries that would not fit in it, the graph asks
each request for no more than what is left of the turn, and a failed request is one
``BackendError`` line naming the server and what went wrong.

What a server sends is bounded too: a response may hold at most ``response_byte_cap`` bytes
(a 3 MB reply held a 120 s turn to its end), and an answer that is not an OpenAI chat
completion (an HTML page, JSON of another shape, SSE events that are not JSON) is named as
such, with the server's URL, instead of "No generation chunks were returned".
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx2
import openai
from langchain_openai import ChatOpenAI
from openai.types.chat import ChatCompletion

from agent.protocol.tool_calls import ToolCallParse, parse_openai_message
from agent.protocol.tool_schemas import TOOL_SCHEMAS
from tools.errors import BackendError, BadInput, ShopagentError, one_line
from tools.settings.checks import shown
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
        http_client=deadline_http_client(response_byte_cap(llm.max_tokens)),
    )


#: Whatever ``max_tokens`` says, a response may hold this many bytes.
MIN_RESPONSE_BYTES = 64 * 1024
#: Bytes one generated token may cost on the wire: a streamed token is one SSE event of about
#: 300 bytes of JSON (ids, model name, the delta), so 2 KiB leaves room for any server.
BYTES_PER_TOKEN = 2 * 1024


def response_byte_cap(max_tokens: int) -> int:
    """The most bytes one response of a ``max_tokens`` request may hold (64 KiB at least)."""
    return max(MIN_RESPONSE_BYTES, BYTES_PER_TOKEN * max_tokens)


class ResponseDeadline(httpx2.ReadTimeout):
    """A response still arriving when its whole time was up (a server dripping bytes)."""


class ResponseTooLarge(openai.OpenAIError):
    """A response longer than its cap: reading stopped there.

    An ``OpenAIError``, so the OpenAI client passes it on as it is (no retry: the server would
    send the same megabytes again)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the response passed {limit // 1024} KiB")
        self.limit = limit


class NotOpenAIReply(openai.OpenAIError):
    """An answer that is not an OpenAI chat completion (the detail says what it was)."""


class _DeadlineStream(httpx2.SyncByteStream):
    """The body of one response, cut when the request's time is spent.

    httpx's read timeout bounds the silence between two reads, not the whole answer: a server
    that sends its headers and then one byte a second, or only SSE keep-alive comments, never
    trips it and would hold a chat turn forever. Every chunk that arrives is a moment to check
    the clock, so a dripping body ends within a chunk's interval of its deadline.
    """

    def __init__(
        self,
        stream: httpx2.SyncByteStream,
        deadline: float | None,
        seconds: float | None,
        max_bytes: int | None = None,
    ) -> None:
        self._stream, self._deadline, self._seconds = stream, deadline, seconds
        self._max_bytes = max_bytes

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        for chunk in self._stream:
            if self._deadline is not None and time.monotonic() > self._deadline:
                raise ResponseDeadline(f"the response took longer than {self._seconds:.0f} s")
            received += len(chunk)
            if self._max_bytes is not None and received > self._max_bytes:
                raise ResponseTooLarge(self._max_bytes)
            yield chunk

    def close(self) -> None:
        self._stream.close()


class DeadlineTransport(httpx2.HTTPTransport):
    """An HTTP transport whose responses must arrive whole within the request's read timeout
    (the per-request budget the clients set: what is left of the chat turn), and hold at most
    ``max_bytes`` (None: any size)."""

    def __init__(self, *args: Any, max_bytes: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_bytes = max_bytes

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        started = time.monotonic()
        response = super().handle_request(request)
        seconds = (request.extensions.get("timeout") or {}).get("read")
        if seconds is None and self.max_bytes is None:
            return response
        deadline = None if seconds is None else started + float(seconds)
        stream = _DeadlineStream(
            response.stream,  # type: ignore[arg-type]
            deadline,
            None if seconds is None else float(seconds),
            self.max_bytes,
        )
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=stream,
            extensions=response.extensions,
            request=request,
        )


def deadline_http_client(max_bytes: int | None = None) -> httpx2.Client:
    """The HTTP client both OpenAI clients use: the library's defaults, plus the deadline and
    (``max_bytes``) the cap on one response's size."""
    return openai.DefaultHttpxClient(transport=DeadlineTransport(max_bytes=max_bytes))


def request_budget(llm: LLMSettings, turn_timeout_s: float | None) -> tuple[float, int]:
    """``(seconds per request, retries)`` so that all attempts of one request fit in a turn.

    Without a turn deadline the settings stand. With one, a request may take at most the
    turn, and only the retries that fit stay: 120 s requests in a 120 s turn get none.
    """
    if turn_timeout_s is None:
        return llm.timeout_s, llm.max_retries
    timeout = min(llm.timeout_s, turn_timeout_s)
    fitting = max(0, int(turn_timeout_s // timeout) - 1)
    return timeout, min(llm.max_retries, fitting)


class ShopagentChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` whose failures are one ``BackendError`` line naming the server.

    The OpenAI client's own errors read "Request timed out." or "Connection error.", which
    say neither which server nor what to do; a shopper sees this line in the answer.
    """

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        # A per-call ``timeout`` (what is left of the turn) never lengthens the configured one.
        if isinstance(kwargs.get("timeout"), int | float) and isinstance(
            self.request_timeout, int | float
        ):
            kwargs["timeout"] = min(kwargs["timeout"], self.request_timeout)
        chunks = 0
        try:
            for chunk in super()._stream(*args, **kwargs):
                chunks += 1
                yield chunk
            if chunks == 0:  # an HTML page, or JSON that is not an event stream
                raise NotOpenAIReply("its answer held no chat completion chunks")
        except (openai.OpenAIError, httpx2.TimeoutException, json.JSONDecodeError) as error:
            timeout = kwargs.get("timeout") or self.request_timeout
            raise model_server_error(self.openai_api_base, error, timeout) from error

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super()._generate(*args, **kwargs)
        except (openai.OpenAIError, httpx2.TimeoutException, json.JSONDecodeError) as error:
            timeout = kwargs.get("timeout") or self.request_timeout
            raise model_server_error(self.openai_api_base, error, timeout) from error
        except ShopagentError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as error:  # another shape
            wrong = NotOpenAIReply(f"its answer is not a chat completion ({one_line(error, 80)})")
            raise model_server_error(self.openai_api_base, wrong) from error

    def _convert_chunk_to_generation_chunk(self, chunk: Any, *args: Any, **kwargs: Any) -> Any:
        """A streamed event as LangChain reads it, once it is known to be a chat completion
        chunk: LangChain reads ``{"hello": 1}`` as an empty reply, and ``choices: [1]`` fails
        with ``TypeError``."""
        if not _is_completion_chunk(chunk):
            raise NotOpenAIReply(
                f"it streamed an event that is not a chat completion chunk: {shown(chunk)}"
            )
        return super()._convert_chunk_to_generation_chunk(chunk, *args, **kwargs)


def _is_completion_chunk(chunk: Any) -> bool:
    """An OpenAI ``chat.completion.chunk``: a ``choices`` list of objects with a ``delta``
    (empty in the last event of a stream that reports ``usage``)."""
    if not isinstance(chunk, dict):
        return False
    if chunk.get("type") == "content.delta":  # the beta stream's own events
        return True
    body = chunk.get("chunk") if isinstance(chunk.get("chunk"), dict) else chunk
    choices = body.get("choices")
    if not isinstance(choices, list):
        return False
    if not choices:
        return body.get("usage") is not None or body.get("id") is not None
    return all(isinstance(choice, dict) and "delta" in choice for choice in choices)


def model_server_error(
    base_url: str | None,
    error: BaseException,
    timeout: float | None = None,
) -> BackendError:
    """One line: which model server, and whether it hung, is down, refused the request, sent
    too much or answered something that is not an OpenAI chat completion."""
    where = f"the model server at {base_url}"
    too_large = error if isinstance(error, ResponseTooLarge) else _root_cause(error)
    if isinstance(too_large, ResponseTooLarge):
        return BackendError(
            f"{where} sent more than {too_large.limit // 1024} KiB in one answer; stopped "
            "reading it (a runaway reply, or not a chat model)"
        )
    if isinstance(error, NotOpenAIReply | json.JSONDecodeError):
        detail = one_line(error, 160)
        if isinstance(error, json.JSONDecodeError):
            detail = f"it streamed an event that is not JSON ({detail})"
        return BackendError(
            f"{where} did not answer as an OpenAI-compatible server: {detail}; check "
            "SHOPAGENT_LLM_BASE_URL"
        )
    if isinstance(error, ResponseDeadline) or isinstance(_root_cause(error), ResponseDeadline):
        within = f" within {timeout:.0f} s" if timeout else ""
        return BackendError(f"{where} did not finish its answer{within} (dripping or overloaded)")
    if isinstance(error, openai.APITimeoutError | httpx2.TimeoutException):
        within = f" within {timeout:.0f} s" if timeout else ""
        return BackendError(f"{where} did not answer{within} (hung or overloaded)")
    if isinstance(error, openai.APIConnectionError):
        cause = _root_cause(error)
        return BackendError(f"{where} is unreachable ({type(cause).__name__}: {cause})")
    if isinstance(error, openai.APIStatusError):
        detail = " ".join(str(error.message).split())[:200]
        return BackendError(f"{where} answered HTTP {error.status_code}: {detail}")
    return BackendError(f"{where} failed: {one_line(error, 200)}")


def _root_cause(error: BaseException) -> BaseException:
    """The first exception in the chain (``Connection refused``, not "Connection error.")."""
    seen = {id(error)}
    while (cause := error.__cause__ or error.__context__) is not None and id(cause) not in seen:
        seen.add(id(cause))
        error = cause
    return error


def chat_model(
    llm: LLMSettings, *, turn_timeout_s: float | None = None, **extra: Any
) -> ChatOpenAI:
    """A LangChain chat model on the same endpoint (``extra`` goes to ``ChatOpenAI``).

    ``turn_timeout_s``: the chat turn's deadline; requests and retries then fit inside it
    (``request_budget``).
    """
    timeout, retries = request_budget(llm, turn_timeout_s)
    http_client = deadline_http_client(response_byte_cap(llm.max_tokens))
    return ShopagentChatOpenAI(
        model=llm.model,
        base_url=_require_endpoint(llm),
        api_key=api_key_for(llm),
        temperature=llm.temperature,
        max_completion_tokens=llm.max_tokens,
        timeout=timeout,
        max_retries=retries,
        stop=list(llm.stop) if llm.stop else None,
        **{"http_client": http_client, **extra},
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
