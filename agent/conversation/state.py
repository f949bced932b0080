"""The agent's explicit graph state, its limits, and the events a chat turn streams.

Everything a node needs lives in ``AgentState`` (checkpointed per conversation), so a resumed
conversation continues exactly where it stopped. Per-turn fields are reset by the ``start``
node; conversation-wide fields (messages, retrieved products, turn summaries) accumulate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

from tools.errors import BadInput

StopReason = Literal["answered", "clarify", "budget", "timeout", "model_error", "reference"]
#: Who writes the reply: the model (checked, shown only if it passes) or the graph, from the
#: results (``agent.conversation.compose``). See ``tools.settings.llm.LLMSettings.prose``.
ProseMode = Literal["model", "composed"]
#: The prompt the query model answers in composed mode (``agent.protocol.writer_prompts``).
WriterStyle = Literal["expand", "rewrite"]


@dataclass(frozen=True, slots=True)
class AgentLimits:
    """Budgets that keep a turn bounded whatever the model does."""

    max_tool_calls: int = 3
    turn_timeout_s: float = 60.0
    #: Per tool call, capped by what is left of the turn.
    tool_timeout_s: float = 20.0
    results_per_search: int = 10
    #: Products listed in the final answer when the model cites none in particular.
    shown_products: int = 5
    #: Earlier turns kept in the prompt: a small model has little context to spare.
    history_turns: int = 4
    #: Description characters sent to the model per product.
    description_chars: int = 200
    #: Most tokens the model may spend on the step that writes the search. An expand call
    #: with a ``fix`` and a word was measured at about 50 tokens; a small model that chats
    #: instead would otherwise ramble for seconds.
    call_max_tokens: int = 96
    #: Searches the graph may add when nothing matched, each dropping one more constraint.
    max_relaxations: int = 3

    def __post_init__(self) -> None:
        if self.max_tool_calls < 1:
            raise BadInput("max_tool_calls must be at least 1")
        if self.turn_timeout_s <= 0 or self.tool_timeout_s <= 0:
            raise BadInput("timeouts must be positive")


def merge_products(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    """Conversation-wide product registry: the first sighting of an id keeps its place."""
    merged = dict(left)
    for product_id, product in right.items():
        merged.setdefault(product_id, product)
    return merged


class AgentState(TypedDict, total=False):
    # -- conversation-wide --------------------------------------------------------------------
    messages: Annotated[list[AnyMessage], add_messages]
    conversation_id: str
    turn: int
    #: Every product any tool returned in this conversation: id -> Product.to_dict().
    retrieved: Annotated[dict[str, Any], merge_products]
    #: One summary per finished turn (user text, answer, shown products): what history() shows.
    turns: list[dict[str, Any]]
    #: What the shopper is after (``Constraints.to_dict()``), updated by every message.
    constraints: dict[str, Any]
    #: Request words -> the query the model wrote for them (composed prose): the same words
    #: in a later turn reuse it instead of asking the model again.
    written_queries: dict[str, str]
    #: The list the shopper last saw (``ShownProduct``-shaped dicts): "the second one" and
    #: "compare 1 and 3" point into it, "cheaper" is relative to its prices.
    last_shown: list[dict[str, Any]]
    # -- per turn (reset by ``start``) ------------------------------------------------------
    user_text: str
    #: Judged gains for this turn's query (product id -> gain); empty when there are none.
    judged: dict[str, int]
    query_id: str | None
    turn_started_at: float
    turn_deadline: float
    tool_calls_used: int
    #: Model steps of this turn (see ``trajectory.ModelStep``), as dicts.
    steps: list[dict[str, Any]]
    #: Product ids this turn's tools returned, in the order they were returned.
    turn_product_ids: list[str]
    stop_reason: StopReason | None
    #: The model's answer text when it wrote one (no tool call).
    answer_text: str | None
    #: This turn's reference to the last list (``references.Reference`` as a dict), if any.
    reference: dict[str, Any] | None
    #: What this message changed in the constraints (for the trajectory and the reward).
    changes: list[str]
    #: The message named a new product rather than refining the last one.
    new_product: bool
    #: The constraints this turn's searches run with: ``constraints`` minus any relaxed.
    active: dict[str, Any]
    #: Constraints dropped because nothing matched them, in order ("brand Razer").
    relaxed: list[str]
    #: Per search round: how many products matched in all (the backend's count) and how
    #: many of the returned ones respect the constraints.
    rounds: list[dict[str, int]]
    #: A reply the graph wrote without searching (reference answers, clarifying questions).
    composed_text: str | None
    #: Why the model could not write this turn's search (the graph searched instead).
    model_problem: str | None


# -- events a turn streams to the terminal ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextChunk:
    """Model text as it is generated: a live preview; ``FinalAnswer.text`` is what to keep."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    call_id: str
    name: str
    ok: bool
    product_ids: list[str]
    took_ms: float
    error: str | None = None
    #: The tool that answered instead when ``name`` failed.
    fallback: str | None = None


@dataclass(frozen=True, slots=True)
class ShownProduct:
    """A recommended product as the catalog has it (never the model's wording)."""

    position: int
    id: str
    title: str
    brand: str
    price: str | None
    category: str = ""


@dataclass(frozen=True, slots=True)
class ProductsShown:
    products: list[ShownProduct]


@dataclass(frozen=True, slots=True)
class FinalAnswer:
    text: str
    products: list[ShownProduct]
    stop_reason: StopReason
    episode_id: str
    reward: float
    violations: list[str] = field(default_factory=list)
    #: The constraints the products were searched with, as one line
    #: ("mouse · Logitech · under $20"); empty when there are none.
    filters: str = ""
    #: Constraints dropped because nothing matched them ("brand Razer").
    relaxed: list[str] = field(default_factory=list)
    #: Who wrote ``text``: "model" (it passed the checks) or "composed" (from the results).
    written_by: str = "composed"


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the shopper should know that is not part of the answer (a log write failed)."""

    text: str


ChatEvent = TextChunk | ToolCallStarted | ToolCallFinished | ProductsShown | FinalAnswer | Notice


def shown_from_dict(data: dict[str, Any]) -> ShownProduct:
    return ShownProduct(
        position=int(data["position"]),
        id=str(data["id"]),
        title=str(data["title"]),
        brand=str(data.get("brand") or ""),
        price=data.get("price"),
        category=str(data.get("category") or ""),
    )
