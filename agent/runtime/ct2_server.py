"""An OpenAI-compatible server for a stored model on CTranslate2: what ``shopagent chat`` starts.

Why its own server: the agent speaks only the OpenAI protocol, and ``transformers serve`` (the
other runtime, ``SHOPAGENT_LLM_RUNTIME=transformers``) generates with PyTorch kernels that
take seconds per call on two cores. This serves the same model directory, rendered by the
same chat template (``agent.runtime.rendering``), with CTranslate2's int8 kernels. It answers
what the project's clients send (``/v1/chat/completions``, streamed or not, with tools, stop
strings, ``max_tokens``/``max_completion_tokens``, temperature, top_p, seed), ``/v1/models``
and ``/health``; tool calls come back as the text the model wrote, which the agent parses
(``agent.protocol.tool_calls``) as it does for every server.

Run: ``python -m agent.runtime.ct2_server MODEL_DIR --port 8000 [--threads 2]``; the model is
called by its directory's name.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from agent.protocol.chat_template import (
    TOOL_CALL_OPEN,
    TURN_END,
    complete_call_close,
    demanded_call_opening,
)
from agent.runtime.ct2_model import Ct2Generator, PreparedPrompt, Sampling

#: The most tokens one request may ask for (the model's context is 8k; replies are short).
MAX_NEW_TOKENS = 4096
#: What the project's clients ask for when a request names no ``max_tokens``.
DEFAULT_MAX_TOKENS = 256


class RequestError(ValueError):
    """A request this server cannot answer: a 400 with this message."""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The parts of an OpenAI chat-completions request this server honours."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    sampling: Sampling
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool = False
    #: The tool the request demands (``tool_choice``), whose call's start the server writes.
    required_tool: str | None = None
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, body: Any) -> ChatRequest:
        if not isinstance(body, Mapping):
            raise RequestError("the body must be a JSON object")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError("'messages' must be a non-empty list")
        tools = body.get("tools") or None
        if tools is not None and not isinstance(tools, list):
            raise RequestError("'tools' must be a list")
        limit = next(
            (
                body[key]
                for key in ("max_completion_tokens", "max_tokens")
                if body.get(key) is not None
            ),
            DEFAULT_MAX_TOKENS,
        )
        temperature = body.get("temperature")
        top_p = body.get("top_p")
        seed = body.get("seed")
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= MAX_NEW_TOKENS
        ):
            raise RequestError(f"'max_tokens' must be an integer from 1 to {MAX_NEW_TOKENS}")
        if temperature is not None and not isinstance(temperature, int | float):
            raise RequestError("'temperature' must be a number")
        if top_p is not None and not isinstance(top_p, int | float):
            raise RequestError("'top_p' must be a number")
        if seed is not None and not isinstance(seed, int):
            raise RequestError("'seed' must be an integer")
        stop = body.get("stop") or ()
        stop = (stop,) if isinstance(stop, str) else tuple(str(s) for s in stop if s)
        options = body.get("stream_options") or {}
        required = _required_tool(body.get("tool_choice"), tools)
        return cls(
            messages=[_plain_message(m) for m in messages],
            tools=tools,
            sampling=Sampling(
                max_new_tokens=limit,
                temperature=float(temperature or 0.0),
                top_p=float(1.0 if top_p is None else top_p),
                seed=seed,
            ),
            stop=stop,
            stream=bool(body.get("stream")),
            include_usage=bool(isinstance(options, Mapping) and options.get("include_usage")),
            model=str(body.get("model") or ""),
            required_tool=required,
        )


def _required_tool(choice: Any, tools: list[dict[str, Any]] | None) -> str | None:
    """The one tool a ``tool_choice`` demands: a named function, or ``required`` with one tool
    offered; None for ``auto``, ``none``, or ``required`` among several."""
    names = [
        str(t.get("function", {}).get("name", "")) for t in tools or [] if isinstance(t, Mapping)
    ]
    if choice == "required" and len(names) == 1:
        return names[0]
    if isinstance(choice, Mapping):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str) or name not in names:
            raise RequestError(f"'tool_choice' names a tool that is not offered: {name!r}")
        return name
    if choice not in (None, "auto", "none", "required"):
        raise RequestError("'tool_choice' must be auto, none, required or a named function")
    return None


def _plain_message(message: Any) -> dict[str, Any]:
    """A message with string content (the template reads text; parts are joined)."""
    if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
        raise RequestError("each message must be an object with a 'role'")
    plain = dict(message)
    content = plain.get("content")
    if isinstance(content, list):
        plain["content"] = "".join(
            str(part.get("text", "")) for part in content if isinstance(part, Mapping)
        )
    elif content is None:
        plain["content"] = ""
    elif not isinstance(content, str):
        raise RequestError("a message's 'content' must be a string or a list of text parts")
    return plain


@dataclass(slots=True)
class Reply:
    """One reply being written: text released as it becomes safe to show, cut at a stop."""

    stops: tuple[str, ...]
    text: str = ""
    released: int = 0
    stopped: bool = False

    def add(self, decoded: str) -> str:
        """Take the whole decoded reply so far; return the new text that is safe to send (no
        half character, no part of what may yet become a stop string)."""
        if self.stopped:
            return ""
        if decoded.endswith("\ufffd"):  # a character split across tokens: wait for the rest
            return ""
        self.text = decoded
        cut = min((i for i in (decoded.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self.text = decoded[:cut]
            return self._release(cut)
        held = max((_overlap(decoded, s) for s in self.stops), default=0)
        return self._release(len(decoded) - held)

    def finish(self) -> str:
        return "" if self.stopped else self._release(len(self.text))

    def _release(self, upto: int) -> str:
        out = self.text[self.released : upto] if upto > self.released else ""
        self.released = max(self.released, upto)
        return out


def _overlap(text: str, stop: str) -> int:
    """How many trailing characters of ``text`` begin ``stop`` (and so must be held back)."""
    for size in range(min(len(stop) - 1, len(text)), 0, -1):
        if stop.startswith(text[-size:]):
            return size
    return 0


@dataclass(frozen=True, slots=True)
class Step:
    """New reply text, why the reply ended (None while it goes on), and the token counts."""

    text: str
    finish: str | None
    prompt_tokens: int
    completion_tokens: int

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


class ChatService:
    """Chat completions over one ``Ct2Generator`` (thread-safe: CTranslate2 queues requests)."""

    def __init__(self, generator: Ct2Generator, name: str) -> None:
        self.generator = generator
        self.name = name

    def events(self, request: ChatRequest, prompt: PreparedPrompt) -> Iterator[Step]:
        """The reply to ``prompt`` as it is written; the last step has the finish reason."""
        prompt_tokens = prompt.tokens
        reply = Reply(stops=(*request.stop, TURN_END))
        ids: list[int] = []
        tokenizer = self.generator.tokenizer
        written = self.written_start(request)
        steps = self.generator.stream(
            prompt, request.sampling, self.generator.prompt_tokens(written) if written else ()
        )
        try:
            for token_id in steps:
                ids.append(token_id)
                decoded = written + tokenizer.decode(ids, skip_special_tokens=True)
                if written and token_id == self.generator.call_close_id:
                    decoded = complete_call_close(decoded)  # the call is done: its tag written
                delta = reply.add(decoded)
                if delta:
                    yield Step(delta, None, prompt_tokens, len(ids))
                if reply.stopped:
                    break
        finally:
            steps.close()
        tail = reply.finish()
        length = not reply.stopped and len(ids) >= request.sampling.max_new_tokens
        yield Step(tail, "length" if length else "stop", prompt_tokens, len(ids))

    def written_start(self, request: ChatRequest) -> str:
        """The reply's start the server writes itself: the call's opening when the request
        demands a tool and the model writes calls in the tools template (the only format whose
        call start is known); the model then writes only the arguments. Greedy, that is the
        reply it would have written (checked in ``tests/test_model_server_e2e.py``), in about
        half the generated tokens."""
        schema = next(
            (
                tool
                for tool in request.tools or ()
                if tool.get("function", {}).get("name") == request.required_tool
            ),
            None,
        )
        return demanded_call_opening(self.generator.tokenizer, request.required_tool, schema)

    def native_calls(
        self, request: ChatRequest, prompt: PreparedPrompt, text: str
    ) -> tuple[str, list[dict[str, Any]]] | None:
        """(content, OpenAI ``tool_calls``) parsed as ``transformers serve`` parses them, with
        the model's own response template; None when no tools were offered, the model has no
        template, or no call parses (the text then goes back as content, for the agent's
        parser to classify)."""
        tokenizer = self.generator.tokenizer
        if not request.tools or getattr(tokenizer, "response_template", None) is None:
            return None
        try:
            parsed = tokenizer.parse_response(text, prefix=prompt.text)
        except (ValueError, KeyError, TypeError):
            return None
        found = parsed.get("tool_calls") or []
        calls = []
        for index, call in enumerate(found):
            function = call.get("function", call) if isinstance(call, Mapping) else {}
            arguments = function.get("arguments", "")
            calls.append(
                {
                    "index": index,
                    "id": f"call_{uuid.uuid4().hex[:12]}_{index}",
                    "type": "function",
                    "function": {
                        "name": str(function.get("name", "")),
                        "arguments": arguments
                        if isinstance(arguments, str)
                        else json.dumps(arguments, ensure_ascii=False),
                    },
                }
            )
        return (str(parsed.get("content") or ""), calls) if calls else None

    def complete(self, request: ChatRequest) -> dict[str, Any]:
        prompt = self.generator.prepare(request.messages, request.tools)
        steps = list(self.events(request, prompt))
        text, last = "".join(step.text for step in steps), steps[-1]
        message: dict[str, Any] = {"role": "assistant", "content": text}
        finish = last.finish
        native = self.native_calls(request, prompt, text)
        if native is not None:
            content, calls = native
            message = {"role": "assistant", "content": content, "tool_calls": calls}
            finish = "tool_calls"
        return {
            "id": _completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.name,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": last.usage(),
        }

    def stream(self, request: ChatRequest) -> Iterator[bytes]:
        """Server-sent events, as OpenAI streams them; closing stops the generation.

        With tools offered, text from the first ``<tool_call>`` on is held back and sent at
        the end as ``tool_calls`` deltas (or as content, when no call parses), as
        ``transformers serve`` does."""
        completion_id, created = _completion_id(), int(time.time())

        def event(delta: dict[str, Any], finish: str | None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return chunk_bytes({"choices": [choice]})

        def chunk_bytes(fields: dict[str, Any]) -> bytes:
            chunk = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.name,
                **fields,
            }
            return f"data: {json.dumps(chunk)}\n\n".encode()

        prompt = self.generator.prepare(request.messages, request.tools)
        yield event({"role": "assistant", "content": ""}, None)
        text, sent, holding = "", 0, False
        last: Step | None = None
        for last in self.events(request, prompt):
            text += last.text
            if holding:
                continue
            upto = len(text)
            if request.tools:
                cut = text.find(TOOL_CALL_OPEN)
                holding = cut >= 0
                upto = cut if holding else len(text) - _overlap(text, TOOL_CALL_OPEN)
            if upto > sent:
                yield event({"content": text[sent:upto]}, None)
                sent = upto
        assert last is not None  # events always ends with a finishing step
        native = self.native_calls(request, prompt, text) if holding else None
        if native is not None:
            content, calls = native
            if content.startswith(text[:sent]) and len(content) > sent:
                yield event({"content": content[sent:]}, None)
            yield event({"tool_calls": calls}, None)
            yield event({}, "tool_calls")
        else:
            if len(text) > sent:
                yield event({"content": text[sent:]}, None)
            yield event({}, last.finish)
        if request.include_usage:
            yield chunk_bytes({"choices": [], "usage": last.usage()})
        yield b"data: [DONE]\n\n"


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def build_app(service: ChatService) -> FastAPI:
    """The FastAPI app: the three routes the project's clients call."""
    app = FastAPI(title="shopagent model server", docs_url=None, redoc_url=None)

    def error(status: int, message: str) -> JSONResponse:
        body = {"error": {"message": message, "type": "invalid_request_error"}}
        return JSONResponse(body, status_code=status)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        entry = {"id": service.name, "object": "model", "owned_by": "shopagent", "created": 0}
        return {"object": "list", "data": [entry]}

    @app.post("/v1/chat/completions")
    async def chat_completions(raw: Request) -> Any:
        try:
            request = ChatRequest.parse(await raw.json())
        except ValueError as problem:  # JSON that does not parse is a ValueError too
            return error(400, str(problem)[:300])
        if request.model and request.model != service.name:
            return error(404, f"this server serves {service.name!r}, not {request.model!r}")
        if request.stream:
            return StreamingResponse(service.stream(request), media_type="text/event-stream")
        return await run_in_threadpool(service.complete, request)

    return app


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores).")
    parser.add_argument(
        "--workers", type=int, default=1, help="Requests generated at once (CTranslate2 queues)."
    )
    args = parser.parse_args(argv)
    model_dir = args.model_dir.resolve()
    generator = Ct2Generator(model_dir, threads=args.threads, inter_threads=args.workers)
    app = build_app(ChatService(generator, model_dir.name))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
