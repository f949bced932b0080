"""The agent's LangChain tools, bound to the search backends, and the ToolNode that runs them.

Tool names and argument schemas are ``agent.protocol.tool_schemas.TOOL_SCHEMAS`` verbatim, so the
names a small model is trained on are the names that run. Each tool returns
``(content, artifact)``: the content is a ``<tool_data>`` block for the model, the artifact the
structured facts (attempts, ranked product ids, scores, timings) for the trajectory.

The artifact is plain data, since it travels inside the ``ToolMessage`` (and so through the
checkpoint); ``artifact_products`` reads its products back as the catalog's ``Product``.

A backend that fails (``SearchError``: down, index missing, timed out) never ends the turn:
the tool tells the model what failed and retries the request on the other search tool
(lexical <-> concepts), recording both attempts. Each backend call runs under a timeout:
the smaller of the per-tool limit and what is left of the turn.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import asdict
from typing import Any, TypeVar

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

from agent.conversation.deps import AgentLimits, AgentToolbox
from agent.conversation.events import ToolCallFinished, ToolCallStarted
from agent.conversation.prompts import product_for_model, tool_data_block
from agent.conversation.state import AgentState
from agent.protocol.tool_schemas import GET_PRODUCT, SEARCH_CONCEPTS, SEARCH_PRODUCTS, TOOL_SCHEMAS
from agent.protocol.tool_search import fallback_search, plan_tool_search, run_tool_search
from agent.trajectory.log import HitRecord, ToolAttempt
from tools.catalog.product import Product
from tools.errors import one_line
from tools.search.backend import BackendUnavailable, SearchError
from tools.search.results import SearchHit, SearchResults

T = TypeVar("T")

#: The turn's wall-clock deadline (epoch seconds), set per tool call by the ToolNode wrapper.
_TURN_DEADLINE: ContextVar[float | None] = ContextVar("turn_deadline", default=None)
#: Below this much time left, a fallback is not attempted.
_MIN_ATTEMPT_S = 0.05


class AgentTools:
    """The chat's tools over one toolbox, with the turn's limits.

    Every call goes through ``agent.protocol.tool_search``: the same reading of arguments and
    the same search as ``shopagent eval`` and the RL reward. ``fuse_concepts`` (the dataset's
    search choice) sends ``search_products`` down the fused keyword + concept path.
    """

    def __init__(
        self, toolbox: AgentToolbox, limits: AgentLimits, *, fuse_concepts: bool = False
    ) -> None:
        self.toolbox = toolbox
        self.limits = limits
        self.fuse_concepts = fuse_concepts

    # -- the tools ---------------------------------------------------------------------------

    def search_products(self, **arguments: Any) -> tuple[str, dict[str, Any]]:
        return self._search(SEARCH_PRODUCTS, arguments)

    def search_concepts(self, **arguments: Any) -> tuple[str, dict[str, Any]]:
        return self._search(SEARCH_CONCEPTS, arguments)

    def get_product(self, **arguments: Any) -> tuple[str, dict[str, Any]]:
        search = plan_tool_search(GET_PRODUCT, arguments, size=1)
        product_id = str(search.product_id)
        read = search.arguments
        attempts: list[ToolAttempt] = []
        product: Product | None = None
        error: str | None = None
        readers: list[tuple[str, Callable[[], Product | None]]] = [
            (GET_PRODUCT, lambda: _first(run_tool_search(search, self.toolbox))),
            # the concept index opens only if the lexical side could not answer
            ("concepts.get", lambda: self.toolbox.get_from_concept_index(product_id)),
        ]
        for label, read_product in readers:
            attempt, found = self._attempt(label, read, read_product)
            attempts.append(attempt)
            if attempt.ok:
                product = found
                break
            error = attempt.error
        payload: dict[str, Any] = {"tool": GET_PRODUCT, "arguments": read}
        products: list[Product] = []
        if product is not None:
            products = [product]
            attempts[-1].hits = [HitRecord(product.id, 1, 1.0)]
            payload["results"] = [self._for_model(product)]
        elif all(not a.ok for a in attempts):
            payload["error"] = f"{GET_PRODUCT} failed: {error}"
        else:
            payload["error"] = f"no product with id {product_id!r} in the catalog"
        return tool_data_block(payload), _artifact(GET_PRODUCT, read, attempts, products)

    def as_tools(self) -> list[BaseTool]:
        functions = {
            SEARCH_PRODUCTS: self.search_products,
            SEARCH_CONCEPTS: self.search_concepts,
            GET_PRODUCT: self.get_product,
        }
        return [
            StructuredTool(
                name=schema["function"]["name"],
                description=schema["function"]["description"],
                args_schema=schema["function"]["parameters"],
                func=functions[schema["function"]["name"]],
                response_format="content_and_artifact",
            )
            for schema in TOOL_SCHEMAS
        ]

    # -- machinery ---------------------------------------------------------------------------

    def _search(self, name: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        search = plan_tool_search(
            name, arguments, size=self.limits.results_per_search, fuse_concepts=self.fuse_concepts
        )
        attempt, results = self._attempt(
            name, search.arguments, lambda: run_tool_search(search, self.toolbox)
        )
        attempts = [attempt]
        payload: dict[str, Any] = {"tool": name, "arguments": search.arguments}
        if not attempt.ok:
            payload["error"] = f"{name} failed: {attempt.error}"
            fallback = fallback_search(search)
            if fallback is not None and _time_left() > _MIN_ATTEMPT_S:
                payload["fallback"] = fallback.tool
                retry, results = self._attempt(
                    fallback.tool,
                    fallback.request.to_dict(),
                    lambda: run_tool_search(fallback, self.toolbox),
                )
                attempts.append(retry)
                if not retry.ok:
                    payload["fallback_error"] = f"{fallback.tool} failed: {retry.error}"
        hits: list[SearchHit] = list(results.hits) if results is not None else []
        products = [hit.product for hit in hits]
        payload["results"] = [self._for_model(p) for p in products]
        artifact = _artifact(name, search.arguments, attempts, products)
        total = results.total if results is not None else None
        artifact["total"] = len(products) if total is None else max(int(total), len(products))
        return tool_data_block(payload), artifact

    def _attempt(
        self, tool: str, arguments: dict[str, Any], call: Callable[[], T]
    ) -> tuple[ToolAttempt, T | None]:
        """One backend call under the timeout; a ``SearchError`` becomes a failed attempt."""
        started = time.perf_counter()
        try:
            result = call_with_timeout(call, min(self.limits.tool_timeout_s, _time_left()))
        except SearchError as error:
            return ToolAttempt(
                tool, arguments, ok=False, error=one_line(error), tool_ms=_ms(started)
            ), None
        attempt = ToolAttempt(tool, arguments, ok=True, tool_ms=_ms(started))
        if isinstance(result, SearchResults):
            attempt.hits = [HitRecord(h.product.id, h.rank, float(h.score)) for h in result.hits]
        return attempt, result

    def _for_model(self, product: Product) -> dict[str, Any]:
        return product_for_model(product, self.limits.description_chars)


def build_tool_node(tools: AgentTools) -> ToolNode:
    """A ToolNode over the tools that enforces the turn deadline and streams start/finish."""

    def around_call(
        request: ToolCallRequest, execute: Callable[[ToolCallRequest], ToolMessage | Command]
    ) -> ToolMessage | Command:
        call = request.tool_call
        writer = request.runtime.stream_writer
        writer(
            ToolCallStarted(
                call_id=str(call["id"]), name=call["name"], arguments=dict(call["args"])
            )
        )
        state = request.state
        token = _TURN_DEADLINE.set(state.turn_deadline if isinstance(state, AgentState) else None)
        started = time.perf_counter()
        try:
            result = execute(request)
        finally:
            _TURN_DEADLINE.reset(token)
        if isinstance(result, ToolMessage):
            writer(_finished_event(result, call["name"], _ms(started)))
        return result

    return ToolNode(
        tools.as_tools(),
        wrap_tool_call=around_call,
        handle_tool_errors=_tool_error_message,
    )


def _tool_error_message(error: Exception) -> str:
    """Bad arguments and the like: a one-line message the model can act on."""
    return tool_data_block({"error": f"tool error: {one_line(error)}"})


def _finished_event(message: ToolMessage, name: str, took_ms: float) -> ToolCallFinished:
    artifact = message.artifact if isinstance(message.artifact, dict) else {}
    attempts = artifact.get("attempts") or []
    first_error = attempts[0].get("error") if attempts else None
    fallback = attempts[-1]["tool"] if len(attempts) > 1 else None
    if message.status == "error" and not attempts:
        first_error = str(message.content)
    return ToolCallFinished(
        call_id=str(message.tool_call_id),
        name=name,
        ok=any(a.get("ok") for a in attempts),
        product_ids=[p["id"] for p in artifact.get("products") or []],
        took_ms=took_ms,
        error=first_error,
        fallback=fallback,
    )


def call_with_timeout(call: Callable[[], T], timeout_s: float) -> T:
    """Run ``call`` in a daemon thread; past ``timeout_s`` raise ``BackendUnavailable``.

    A backend client that hangs cannot be interrupted from Python, so the thread is left to
    finish on its own; the turn goes on without it.
    """
    if timeout_s <= 0:
        raise BackendUnavailable("no time left in this turn")
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=target, name="tool-call", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise BackendUnavailable(f"timed out after {timeout_s:.1f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _artifact(
    name: str, arguments: dict[str, Any], attempts: list[ToolAttempt], products: list[Product]
) -> dict[str, Any]:
    return {
        "tool": name,
        "arguments": arguments,
        "attempts": [asdict(a) for a in attempts],
        "products": [p.to_dict() for p in products],
    }


def artifact_products(message: ToolMessage) -> list[Product]:
    """The products a tool call returned, in rank order (none when the tool raised)."""
    artifact = message.artifact if isinstance(message.artifact, dict) else {}
    return [Product.from_dict(p) for p in artifact.get("products") or []]


def artifact_total(message: ToolMessage) -> int:
    """How many products the backend matched in all for a tool call (0 when it raised)."""
    artifact = message.artifact if isinstance(message.artifact, dict) else {}
    return int(artifact.get("total") or 0)


def _first(results: SearchResults) -> Product | None:
    return results.hits[0].product if results.hits else None


def _time_left() -> float:
    deadline = _TURN_DEADLINE.get()
    return float("inf") if deadline is None else deadline - time.time()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
