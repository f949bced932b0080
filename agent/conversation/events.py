"""What a chat turn streams to whoever runs it (the terminal, evals, tests).

The graph's nodes write these with LangGraph's stream writer (``stream_mode="custom"``), so
a caller sees a search start and finish, model prose as it is generated and the final answer,
in order; ``EpisodeRecorded`` comes last and carries the turn's full record for the session
(feedback, the ``refined`` penalty) rather than for the shopper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from agent.conversation.products import ShownProduct
from agent.trajectory.log import EpisodeRecord

StopReason = Literal["answered", "clarify", "budget", "timeout", "model_error", "reference"]


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


@dataclass(frozen=True, slots=True)
class EpisodeRecorded:
    """Streamed after ``FinalAnswer``: the full record (the session keeps it for feedback)."""

    record: EpisodeRecord
    log_error: str | None = None
    #: How this turn follows the previous one: "refinement" (same product, changed
    #: constraints), "reference" (pointed at the last list), "new" or None (first turn).
    follows: str | None = None
