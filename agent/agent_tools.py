"""The agent's LangChain tools, bound to the search backends, and the ToolNode that runs them.

Tool names and argument schemas are ``agent.tool_schemas.TOOL_SCHEMAS`` verbatim, so the
names a small model is trained on are the names that run. Each tool returns
``(content, artifact)``: the content is a ``<tool_data>`` block for the model, the artifact the
structured facts (attempts, ranked product ids, scores, timings) for the trajectory.

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
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, TypeVar

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

from agent.prompts import product_for_model, tool_data_block
from agent.state import AgentLimits, ToolCallFinished, ToolCallStarted
from agent.tool_schemas import GET_PRODUCT, SEARCH_CONCEPTS, SEARCH_PRODUCTS, TOOL_SCHEMAS
from agent.trajectory import HitRecord, ToolAttempt
from tools.catalog.product import Product
from tools.search.backend import BackendUnavailable, SearchError
from tools.search.request import SearchFilters, SearchRequest
from tools.search.results import SearchHit, SearchResults

T = TypeVar("T")

#: The turn's wall-clock deadline (epoch seconds), set per tool call by the ToolNode wrapper.
_TURN_DEADLINE: ContextVar[float | None] = ContextVar("turn_deadline", default=None)
#: Below this much time left, a fallback is not attempted.
_MIN_ATTEMPT_S = 0.05


class AgentToolbox(Protocol):
    """What the tools need: ``tools.search_tools.SearchToolbox`` satisfies it."""

    def run(self, strategy: str, request: SearchRequest) -> SearchResults: ...

    def get(self, product_id: str) -> Product | None: ...


class AgentTools:
    """The three tools over one toolbox, with the turn's limits."""

    def __init__(self, toolbox: AgentToolbox, limits: AgentLimits) -> None:
        self.toolbox = toolbox
        self.limits = limits

    # -- the tools ---------------------------------------------------------------------------

    def search_products(
        self,
        query: str,
        brand: str | None = None,
        max_price: float | None = None,
        min_price: float | None = None,
        category: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        arguments = _present(
            query=query, brand=brand, max_price=max_price, min_price=min_price, category=category
        )
        filters = _filters(brand=brand, max_price=max_price, min_price=min_price, category=category)
        size = self.limits.results_per_search
        return self._search(
            SEARCH_PRODUCTS,
            arguments,
            primary=("lexical", SearchRequest(str(query), filters, size=size)),
            fallback=(SEARCH_CONCEPTS, "concepts", SearchRequest(str(query), filters, size=size)),
        )

    def search_concepts(
        self, concepts: list[str] | str, max_price: float | None = None, brand: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        wanted = [concepts] if isinstance(concepts, str) else [str(c) for c in concepts]
        wanted = [c.strip() for c in wanted if c.strip()]
        arguments = _present(concepts=wanted, max_price=max_price, brand=brand)
        if not wanted:
            raise ValueError("search_concepts needs at least one non-empty concept")
        filters = _filters(brand=brand, max_price=max_price)
        size = self.limits.results_per_search
        return self._search(
            SEARCH_CONCEPTS,
            arguments,
            primary=("concepts", SearchRequest(", ".join(wanted), filters, size=size)),
            fallback=(
                SEARCH_PRODUCTS,
                "lexical",
                SearchRequest(" ".join(wanted), filters, size=size),
            ),
        )

    def get_product(self, product_id: str) -> tuple[str, dict[str, Any]]:
        product_id = str(product_id).strip()
        arguments = {"product_id": product_id}
        attempts: list[ToolAttempt] = []
        product: Product | None = None
        error: str | None = None
        readers: list[tuple[str, Callable[[str], Product | None]]] = [
            (GET_PRODUCT, self.toolbox.get)
        ]
        concepts = _concepts_reader(self.toolbox)
        if concepts is not None:
            readers.append(("concepts.get", concepts))
        for label, read in readers:
            attempt, found = self._attempt(label, arguments, lambda r=read: r(product_id))
            attempts.append(attempt)
            if attempt.ok:
                product = found
                break
            error = attempt.error
        payload: dict[str, Any] = {"tool": GET_PRODUCT, "arguments": arguments}
        products: list[Product] = []
        if product is not None:
            products = [product]
            attempts[-1].hits = [HitRecord(product.id, 1, 1.0)]
            payload["results"] = [self._for_model(product)]
        elif all(not a.ok for a in attempts):
            payload["error"] = f"{GET_PRODUCT} failed: {error}"
        else:
            payload["error"] = f"no product with id {product_id!r} in the catalog"
        return tool_data_block(payload), _artifact(GET_PRODUCT, arguments, attempts, products)

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

    def _search(
        self,
        name: str,
        arguments: dict[str, Any],
        *,
        primary: tuple[str, SearchRequest],
        fallback: tuple[str, str, SearchRequest],
    ) -> tuple[str, dict[str, Any]]:
        strategy, request = primary
        attempt, results = self._attempt(
            name, arguments, lambda: self.toolbox.run(strategy, request)
        )
        attempts = [attempt]
        payload: dict[str, Any] = {"tool": name, "arguments": arguments}
        if not attempt.ok:
            payload["error"] = f"{name} failed: {attempt.error}"
            fallback_name, fallback_strategy, fallback_request = fallback
            if _time_left() > _MIN_ATTEMPT_S:
                payload["fallback"] = fallback_name
                retry, results = self._attempt(
                    fallback_name,
                    fallback_request.to_dict(),
                    lambda: self.toolbox.run(fallback_strategy, fallback_request),
                )
                attempts.append(retry)
                if not retry.ok:
                    payload["fallback_error"] = f"{fallback_name} failed: {retry.error}"
        hits: list[SearchHit] = list(results.hits) if results is not None else []
        products = [hit.product for hit in hits]
        payload["results"] = [self._for_model(p) for p in products]
        return tool_data_block(payload), _artifact(name, arguments, attempts, products)

    def _attempt(
        self, tool: str, arguments: dict[str, Any], call: Callable[[], T]
    ) -> tuple[ToolAttempt, T | None]:
        """One backend call under the timeout; a ``SearchError`` becomes a failed attempt."""
        started = time.perf_counter()
        try:
            result = call_with_timeout(call, min(self.limits.tool_timeout_s, _time_left()))
        except SearchError as error:
            return ToolAttempt(
                tool, arguments, ok=False, error=_one_line(error), tool_ms=_ms(started)
            ), None
        attempt = ToolAttempt(tool, arguments, ok=True, tool_ms=_ms(started))
        if isinstance(result, SearchResults):
            attempt.hits = [HitRecord(h.product.id, h.rank, float(h.score)) for h in result.hits]
        return attempt, result

    def _for_model(self, product: Product) -> dict[str, Any]:
        return product_for_model(product.to_dict(), self.limits.description_chars)


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
        state = request.state if isinstance(request.state, dict) else {}
        token = _TURN_DEADLINE.set(state.get("turn_deadline"))
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
    return tool_data_block({"error": f"tool error: {_one_line(error)}"})


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


def _concepts_reader(toolbox: AgentToolbox) -> Callable[[str], Product | None] | None:
    """The concept index's ``get``, when the toolbox has one: ``get_product``'s fallback.

    ``dir`` rather than ``hasattr``: the index opens lazily and must not be opened (or fail)
    before the lexical side has.
    """
    if "concepts" not in dir(toolbox):
        return None

    def read(product_id: str) -> Product | None:
        return toolbox.concepts.get(product_id)  # type: ignore[attr-defined]

    return read


def _filters(
    *,
    brand: str | None = None,
    max_price: float | None = None,
    min_price: float | None = None,
    category: str | None = None,
) -> SearchFilters:
    return SearchFilters(
        brands=(str(brand).strip(),) if brand and str(brand).strip() else (),
        category=(str(category).strip() or None) if category else None,
        min_price=_price(min_price, "min_price"),
        max_price=_price(max_price, "max_price"),
    )


def _price(value: float | str | None, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        price = Decimal(str(value).strip().lstrip("$").replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not price.is_finite() or price < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return price


def _present(**arguments: Any) -> dict[str, Any]:
    return {key: value for key, value in arguments.items() if value not in (None, "")}


def _time_left() -> float:
    deadline = _TURN_DEADLINE.get()
    return float("inf") if deadline is None else deadline - time.time()


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
