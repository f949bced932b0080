"""The agent's state: one typed, documented dataclass, checkpointed per conversation.

Why a dataclass: every node reads the same fields with the same types (``Constraints``, not
a dict to be parsed again; ``ShownProduct`` and ``Product``, not dicts of strings), and a
field's default is its value at the start of a conversation or, for the fields marked
``PER_TURN``, at the start of every turn (``turn_defaults``: the ``start`` node resets them
from here, not by hand). LangGraph builds the state from its channels before each node
(``AgentState(**values)``), so ``__post_init__`` is also where values read back from a
checkpoint are made whole again (the helpers at the end of this module).

Checkpoints: ``checkpoint_serde`` is the serializer for a conversation store; it allows
exactly the types kept here (``CHECKPOINT_TYPES``), so nothing else is ever rebuilt from a
checkpoint, and LangGraph logs no "unregistered type" warnings.

The events a turn streams, the shown product and the limits are re-exported at the end for
the modules that import them from here (``agent.terminal``, ``cli``, ``evals``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Annotated, Any

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph.message import add_messages

from agent.conversation.constraints import Constraints
from agent.conversation.deps import AgentLimits, ProseMode, WriterStyle
from agent.conversation.events import (
    ChatEvent,
    EpisodeRecorded,
    FinalAnswer,
    Notice,
    ProductsShown,
    StopReason,
    TextChunk,
    ToolCallFinished,
    ToolCallStarted,
)
from agent.conversation.products import ShownProduct
from agent.conversation.references import Reference
from agent.conversation.steps import Step
from agent.trajectory.log import HitRecord, ToolAttempt, ToolCallRecord
from tools.catalog.product import Product

#: The metadata of a field that every turn's ``start`` node resets to its default.
PER_TURN = {"per_turn": True}


def merge_products(left: dict[str, Product], right: dict[str, Product]) -> dict[str, Product]:
    """Conversation-wide product registry: the first sighting of an id keeps its place."""
    merged = dict(left)
    for product_id, product in right.items():
        merged.setdefault(product_id, product)
    return merged


@dataclass(frozen=True, slots=True)
class SearchRound:
    """One round of tool calls: what the backends matched and what the turn kept of it."""

    #: How many products matched in all (the backends' counts, summed over the calls).
    total: int
    #: How many of the returned products respect the constraints.
    kept: int
    #: Every returned product id, in order (before the constraints filtered them).
    raw: tuple[str, ...] = ()
    #: The text query of each call whose products were kept ("" for one without, e.g.
    #: concepts): when there is exactly one, the reply can say what the list was found for.
    queries: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw", tuple(self.raw))
        object.__setattr__(self, "queries", tuple(self.queries))


@dataclass(frozen=True, slots=True)
class TurnSummary:
    """One finished turn, as ``ChatSession.history`` shows it."""

    turn: int
    user_text: str
    answer: str
    products: list[ShownProduct]
    episode_id: str
    stop_reason: str
    #: The constraints of the turn, as one line.
    filters: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnSummary:
        """A summary as older checkpoints kept it (a dict)."""
        return cls(
            turn=int(data["turn"]),
            user_text=str(data["user_text"]),
            answer=str(data["answer"]),
            products=[_shown(p) for p in data.get("products") or []],
            episode_id=str(data["episode_id"]),
            stop_reason=str(data["stop_reason"]),
            filters=str(data.get("filters") or ""),
        )


@dataclass
class AgentState:
    """Everything a node needs, so a resumed conversation continues exactly where it stopped.

    Conversation-wide fields accumulate or carry over from turn to turn; ``PER_TURN`` fields
    start from their defaults at every shopper message.
    """

    # -- conversation-wide --------------------------------------------------------------------
    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)
    conversation_id: str = ""
    #: The number of the current turn (1 for the first message).
    turn: int = 0
    #: Every product any tool returned in this conversation, by id, in order of retrieval.
    retrieved: Annotated[dict[str, Product], merge_products] = field(default_factory=dict)
    #: One summary per finished turn: what ``ChatSession.history`` shows.
    turns: list[TurnSummary] = field(default_factory=list)
    #: What the shopper is after, updated by every message (and ``/filters``).
    constraints: Constraints = field(default_factory=Constraints)
    #: Request words -> the query the model wrote for them (composed prose): the same words
    #: in a later turn reuse it instead of asking the model again.
    written_queries: dict[str, str] = field(default_factory=dict)
    #: The list the shopper last saw: "the second one" and "compare 1 and 3" point into it,
    #: "cheaper" is relative to its prices.
    last_shown: list[ShownProduct] = field(default_factory=list)
    #: Why the model could not write this turn's search (the graph searched instead); set by
    #: ``plan``, cleared by ``respond``.
    model_problem: str | None = None
    # -- given with every message (``turn_input``) ----------------------------------------
    #: Judged gains for this turn's query (product id -> gain); empty when there are none.
    judged: dict[str, int] = field(default_factory=dict)
    query_id: str | None = None
    # -- per turn (reset by ``start``) ------------------------------------------------------
    user_text: str = field(default="", metadata=PER_TURN)
    turn_started_at: float = field(default=0.0, metadata=PER_TURN)
    #: Epoch seconds after which the turn stops searching and answers with what it has.
    turn_deadline: float = field(default=0.0, metadata=PER_TURN)
    tool_calls_used: int = field(default=0, metadata=PER_TURN)
    #: Model steps of this turn, with their tool rounds.
    steps: list[Step] = field(default_factory=list, metadata=PER_TURN)
    #: Product ids this turn's tools returned and the constraints allow, in ranking order.
    turn_product_ids: list[str] = field(default_factory=list, metadata=PER_TURN)
    stop_reason: StopReason | None = field(default=None, metadata=PER_TURN)
    #: The model's answer text when it wrote one (no tool call).
    answer_text: str | None = field(default=None, metadata=PER_TURN)
    #: This turn's reference to the last list, if any.
    reference: Reference | None = field(default=None, metadata=PER_TURN)
    #: What this message changed in the constraints (for the trajectory and the reward).
    changes: list[str] = field(default_factory=list, metadata=PER_TURN)
    #: The message named a new product rather than refining the last one.
    new_product: bool = field(default=False, metadata=PER_TURN)
    #: The constraints this turn's searches run with: ``constraints`` minus any relaxed (set
    #: by ``start``; a reference to a position that is not on the list leaves it as it was).
    active: Constraints = field(default_factory=Constraints)
    #: Constraints dropped because nothing matched them, in order ("brand Razer").
    relaxed: list[str] = field(default_factory=list, metadata=PER_TURN)
    #: One per search round of this turn.
    rounds: list[SearchRound] = field(default_factory=list, metadata=PER_TURN)
    #: A reply the graph wrote without searching (reference answers, clarifying questions).
    composed_text: str | None = field(default=None, metadata=PER_TURN)

    def __post_init__(self) -> None:
        self.constraints = _constraints(self.constraints)
        self.active = _constraints(self.active)
        self.last_shown = [_shown(p) for p in self.last_shown]
        self.retrieved = {k: _product(v) for k, v in self.retrieved.items()}
        self.turns = [_summary(t) for t in self.turns]

    def shopper_words(self) -> str:
        """Everything the shopper wrote in this conversation (words the model may repeat)."""
        return " ".join(str(m.content) for m in self.messages if isinstance(m, HumanMessage))


def turn_defaults() -> dict[str, Any]:
    """The ``PER_TURN`` fields at their defaults: how every turn starts."""
    values: dict[str, Any] = {}
    for spec in fields(AgentState):
        if spec.metadata.get("per_turn"):
            factory = spec.default_factory
            values[spec.name] = factory() if factory is not MISSING else spec.default
    return values


def read_state(values: Mapping[str, Any]) -> AgentState:
    """A checkpoint's values (``graph.get_state(...).values``) as the state."""
    names = {spec.name for spec in fields(AgentState)}
    return AgentState(**{k: v for k, v in values.items() if k in names})


#: The types a conversation's checkpoint holds besides LangChain messages and builtins.
CHECKPOINT_TYPES: tuple[type, ...] = (
    Constraints,
    ShownProduct,
    Product,
    Reference,
    Step,
    SearchRound,
    TurnSummary,
    ToolCallRecord,
    ToolAttempt,
    HitRecord,
)


def checkpoint_serde() -> JsonPlusSerializer:
    """The checkpoint serializer for conversations: the state's own types, nothing else."""
    return JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINT_TYPES)


# -- values read back from a checkpoint ------------------------------------------------------
# A checkpoint written before the state was typed holds dicts where the types are now, and a
# serializer that does not allow a type gives back its fields as a dict: both become the type.


def _constraints(value: Any) -> Constraints:
    return value if isinstance(value, Constraints) else Constraints.from_dict(value)


def _shown(value: Any) -> ShownProduct:
    return value if isinstance(value, ShownProduct) else ShownProduct.from_dict(value)


def _summary(value: Any) -> TurnSummary:
    return value if isinstance(value, TurnSummary) else TurnSummary.from_dict(value)


def _product(value: Any) -> Product:
    if not isinstance(value, Product):
        return Product.from_dict(dict(value))
    if isinstance(value.category_path, tuple):
        return value
    return replace(value, category_path=tuple(value.category_path))


__all__ = [
    "CHECKPOINT_TYPES",
    "AgentLimits",
    "AgentState",
    "ChatEvent",
    "EpisodeRecorded",
    "FinalAnswer",
    "Notice",
    "ProductsShown",
    "ProseMode",
    "SearchRound",
    "ShownProduct",
    "StopReason",
    "TextChunk",
    "ToolCallFinished",
    "ToolCallStarted",
    "TurnSummary",
    "WriterStyle",
    "checkpoint_serde",
    "merge_products",
    "read_state",
    "turn_defaults",
]
