"""The chat engine the terminal drives: send a message, stream what happens, give feedback.

One ``ChatSession`` is one shopper at a terminal. Conversations persist in a SQLite
checkpointer (``$SHOPAGENT_HOME/conversations.sqlite``) keyed by conversation id, so any of
them can be resumed; every turn is appended to the trajectory log, and feedback (``like``,
``buy``) re-appends that turn's episode as a new revision with the reward updated, as does a
next message that refines the turn's results (the ``refined`` component).

The conversation's constraints live in the checkpointed state: ``filters`` shows them,
``edit_filters`` folds words into them ("under 30", "only Logitech", "not HP") without a
search, ``clear_filters`` drops them. ``warm_up`` opens, in the background while the shopper
types, everything the first turn would (the indexes, the sentence model, the model server's
first generation), so the first turn pays for none of it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import Runnable
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from agent.conversation.constraints import Constraints, shown_prices, update_constraints
from agent.conversation.deps import (
    AgentContext,
    AgentDeps,
    AgentLimits,
    AgentToolbox,
    FacetCache,
    ProseMode,
    WriterStyle,
)
from agent.conversation.episode_reward import REFINED, with_component, with_feedback
from agent.conversation.events import ChatEvent, EpisodeRecorded, Notice
from agent.conversation.graph import build_graph, turn_input
from agent.conversation.model_io import model_id_of
from agent.conversation.products import ShownProduct
from agent.conversation.prompts import build_prompt
from agent.conversation.state import AgentState, TurnSummary, checkpoint_serde, read_state
from agent.conversation.writer import writer_messages
from agent.trajectory.log import EpisodeRecord, Feedback, TrajectoryLog, default_log_path, utc_now
from tools.catalog.judgments import Judgments, query_id_for
from tools.errors import BadInput, NotFound, one_line
from tools.search_tools import WARM_UP_TEXT
from tools.settings.config import Settings

CONVERSATIONS_DB = "conversations.sqlite"
#: Graph steps per turn: start + (plan, tools, observe) per tool round + plan + respond.
RECURSION_LIMIT = 64


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    kind: str
    product: ShownProduct
    episode_id: str
    reward: float
    reward_change: float


def conversations_path(settings: Settings) -> Path:
    return settings.home / CONVERSATIONS_DB


def sqlite_checkpointer(path: Path) -> SqliteSaver:
    """A checkpointer on a SQLite file (WAL, so a reader never blocks the chat) that restores
    the state's own types and nothing else (``agent.conversation.state.checkpoint_serde``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    return SqliteSaver(connection, serde=checkpoint_serde())


class ChatSession:
    """A conversation with the agent; ``send`` streams ``ChatEvent``s."""

    def __init__(
        self,
        llm: BaseChatModel,
        toolbox: AgentToolbox,
        *,
        checkpointer: BaseCheckpointSaver,
        log: TrajectoryLog | None,
        dataset: str = "",
        limits: AgentLimits | None = None,
        judgments: Judgments | None = None,
        model_id: str | None = None,
        model_checkpoint: str | None = None,
        catalog_version: Callable[[], str | None] = lambda: None,
        source: str = "chat",
        conversation_id: str | None = None,
        prose: ProseMode = "composed",
        writer_style: WriterStyle = "expand",
        fuse_concepts: bool = False,
    ) -> None:
        self.llm = llm
        self.log = log
        self.judgments = judgments
        self.checkpointer = checkpointer
        self.facets = FacetCache(toolbox)
        deps = AgentDeps(
            toolbox=toolbox,
            limits=limits or AgentLimits(),
            log=log,
            model_id=model_id or model_id_of(llm),
            model_checkpoint=model_checkpoint,
            dataset=dataset,
            catalog_version=catalog_version,
            source=source,
            prose=prose,
            facets=self.facets,
            writer_style=writer_style,
            fuse_concepts=fuse_concepts,
        )
        self.deps = deps
        self.graph = build_graph(llm, deps, checkpointer)
        #: What the last ``warm_up`` opened (``AgentToolbox.warm``), once it has run.
        self.warmed: dict[str, str] = {}
        self.conversation_id = conversation_id or new_conversation_id()
        self._last_record: EpisodeRecord | None = None
        #: The last turn that searched: a refining message lowers its reward.
        self._last_results: EpisodeRecord | None = None

    @classmethod
    def open(
        cls,
        settings: Settings,
        dataset: str,
        llm: BaseChatModel,
        *,
        toolbox: AgentToolbox | None = None,
        judgments: Judgments | None = None,
        limits: AgentLimits | None = None,
        model_checkpoint: str | None = None,
        conversation_id: str | None = None,
        prose: ProseMode | None = None,
        writer_style: WriterStyle = "expand",
        fuse_concepts: bool = False,
    ) -> ChatSession:
        """The standard wiring: search backends, checkpointer and log under ``settings.home``;
        the prose mode from ``settings.llm`` unless given (``[llm] prose``). ``fuse_concepts``:
        the dataset's search choice (``tools.settings.search_choice.chat_search``)."""
        from tools.search_tools import SearchToolbox
        from tools.settings.llm import prose_mode
        from tools.stores import read_manifest

        session = cls(
            llm,
            toolbox or SearchToolbox(settings, dataset),
            checkpointer=sqlite_checkpointer(conversations_path(settings)),
            log=TrajectoryLog(default_log_path(settings.home)),
            dataset=dataset,
            limits=limits,
            judgments=judgments,
            model_checkpoint=model_checkpoint,
            catalog_version=lambda: read_manifest(settings, dataset).get("catalog_version"),
            prose=prose or prose_mode(settings.llm),
            writer_style=writer_style,
            fuse_concepts=fuse_concepts,
        )
        if conversation_id is not None:
            session.resume(conversation_id)
        return session

    # -- chatting ----------------------------------------------------------------------------

    def send(
        self, user_text: str, *, judged: Mapping[str, int] | None = None
    ) -> Iterator[ChatEvent]:
        """Run one turn, yielding events as they happen; the last one is a ``FinalAnswer``.

        ``judged`` (product id -> gain) scores the turn against judgments; without it, the
        session's ``judgments`` are used when the text is one of their queries.
        """
        query_id: str | None = None
        if judged is None and self.judgments is not None:
            query_id = query_id_for(user_text)
            gains = self.judgments.gains(query_id)
            judged = dict(gains) if gains else None
            query_id = query_id if gains else None
        graph_input = turn_input(
            user_text, conversation_id=self.conversation_id, judged=judged, query_id=query_id
        )
        refined = self._last_results
        for event in self.graph.stream(graph_input, self._config(), stream_mode="custom"):
            if isinstance(event, EpisodeRecorded):
                self._last_record = event.record
                if event.log_error:
                    yield Notice(event.log_error)
                if event.follows == "refinement" and refined is not None:
                    notice = self._mark_refined(refined)
                    if notice:
                        yield Notice(notice)
                if event.record.stop_reason not in ("reference", "clarify"):
                    self._last_results = event.record
                continue
            yield event

    @property
    def last_episode(self) -> EpisodeRecord | None:
        """The record of the last turn this session ran (with any feedback revisions)."""
        return self._last_record

    # -- constraints -------------------------------------------------------------------------

    def filters(self) -> Constraints:
        """The conversation's current constraints."""
        return self._state().constraints

    def edit_filters(self, text: str) -> Constraints:
        """Fold ``text`` ("under 30", "only Logitech", "not HP", "with bluetooth") into the
        constraints without searching; the next request searches with them."""
        state = self._state()
        prices = shown_prices(state.last_shown)
        updated = update_constraints(state.constraints, text, self.facets(), prices).constraints
        self._store_constraints(updated)
        return updated

    def clear_filters(self) -> None:
        """Drop every constraint (what "start over" does inside a message)."""
        self._store_constraints(Constraints())

    def warm_up(self) -> threading.Thread:
        """Open, in a background thread while the shopper types, everything the first turn
        would: the search side (``AgentToolbox.warm``: the lexical index, the concept index
        and its sentence model, the writer prompt's hints), the facets, and then the model,
        with a one-token request of the first turn's own prompt (``warm_up_request``).
        Measured on Chorus (``shopagent chat``, the message sent 60 s after start): the first
        turn's ``graph_ms`` was 6.5-10 s against 0.1-1.6 s for later turns when the warm-up
        only loaded the model, spent opening Chroma and loading the sentence model; with this
        it is 0.3-0.8 s, as later turns are.

        Failures are ignored: the turn reports them, and a store that failed to open is
        opened again by the turn. A turn that starts before this ends shares what is open (each
        index opens once, under a lock) and waits at most for the open under way."""

        def run() -> None:
            # Each part on its own: the turn will say what is wrong, in one line.
            with contextlib.suppress(Exception):
                self.warmed = self.deps.toolbox.warm()
            self.facets()
            with contextlib.suppress(Exception):
                prompt, model = self.warm_up_request()
                # Twice: a server that keeps a repeated prompt head computed (the CTranslate2
                # one: the system prompt and worked example) keeps it from the second sight.
                for _ in range(2):
                    for _ in model.stream(prompt):  # streamed, as a turn asks
                        pass

        thread = threading.Thread(target=run, name="warm-up", daemon=True)
        thread.start()
        return thread

    def warm_up_request(self) -> tuple[list[AnyMessage], Runnable]:
        """The prompt and binding of a first turn's model call for a neutral request, capped at
        one token: in composed prose the writer prompt (system prompt, worked example, hints)
        with ``search_products`` bound; with model prose the conversation prompt with every
        tool. Why not "hi": the server's first generation of a prompt of the real shape (the
        chat template with tools, a few hundred tokens) should not be the shopper's; with
        ``transformers serve`` and a "hi" warm-up the first turn's model call took 30.5 s
        against 22 s for later ones (one run, on a loaded machine)."""
        ctx = AgentContext.build(self.llm, self.deps)
        if ctx.prose == "composed":
            prompt = writer_messages(self.deps, WARM_UP_TEXT)
            return prompt, ctx.query_writer.bind(max_tokens=1)
        prompt = build_prompt([HumanMessage(WARM_UP_TEXT)], ctx.limits.history_turns)
        return prompt, ctx.llm_with_tools.bind(max_tokens=1)

    def like(self, position: int) -> FeedbackResult:
        """The shopper likes product ``position`` (1-based) of the last answer: +0.5 reward."""
        return self._feedback("like", position)

    def buy(self, position: int) -> FeedbackResult:
        """The shopper buys product ``position`` (1-based) of the last answer: +1.0 reward."""
        return self._feedback("buy", position)

    # -- conversations -----------------------------------------------------------------------

    def reset(self) -> str:
        """Start a new conversation (the old one stays resumable); returns the new id."""
        self.conversation_id = new_conversation_id()
        self._last_record = None
        self._last_results = None
        return self.conversation_id

    def resume(self, conversation_id: str) -> None:
        """Continue a stored conversation; ``NotFound`` if there is none by that id."""
        snapshot = self.graph.get_state({"configurable": {"thread_id": conversation_id}})
        if not snapshot.values:
            raise NotFound(f"no conversation with id {conversation_id!r}")
        self.conversation_id = conversation_id
        self._last_record = None
        self._last_results = None

    def history(self) -> list[TurnSummary]:
        """The finished turns of this conversation, oldest first."""
        return list(self._state().turns)

    def close(self) -> None:
        connection = getattr(self.checkpointer, "conn", None)
        if isinstance(connection, sqlite3.Connection):
            connection.close()

    def __enter__(self) -> ChatSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        return {
            "configurable": {"thread_id": self.conversation_id},
            "recursion_limit": RECURSION_LIMIT,
        }

    def _state(self) -> AgentState:
        """The conversation's state as its last checkpoint has it."""
        return read_state(self.graph.get_state(self._config()).values)

    def _store_constraints(self, constraints: Constraints) -> None:
        self.graph.update_state(
            self._config(), {"constraints": constraints, "active": constraints}, as_node="respond"
        )

    def _mark_refined(self, record: EpisodeRecord) -> str | None:
        """The previous turn's results were refined: re-append it with the ``refined`` reward."""
        if record.reward.components.get("refined") == REFINED:
            return None
        updated = replace(
            record,
            reward=with_component(record.reward, "refined", REFINED),
            revision=record.revision + 1,
            record_id=uuid.uuid4().hex,
        )
        if self.log is not None:
            try:
                self.log.append(updated)
            except OSError as error:
                return f"trajectory not saved: {one_line(error, 200)}"
        return None

    def _feedback(self, kind: str, position: int) -> FeedbackResult:
        record = self._last_episode()
        if record is None:
            raise BadInput("nothing to give feedback on yet: ask for something first")
        shown = record.recommended
        if not 1 <= position <= len(shown):
            bounds = f"1..{len(shown)}" if shown else "none were shown"
            raise BadInput(f"no product #{position} in the last answer ({bounds})")
        product = ShownProduct.from_dict(shown[position - 1])
        feedback = [*record.feedback, Feedback(kind, product.id, position, utc_now())]
        reward = with_feedback(record.reward, feedback)
        updated = replace(
            record,
            feedback=feedback,
            reward=reward,
            revision=record.revision + 1,
            record_id=uuid.uuid4().hex,
        )
        if self.log is not None:
            self.log.append(updated)
        self._last_record = updated
        if self._last_results is not None and self._last_results.episode_id == record.episode_id:
            self._last_results = updated
        return FeedbackResult(
            kind=kind,
            product=product,
            episode_id=updated.episode_id,
            reward=reward.total,
            reward_change=round(reward.total - record.reward.total, 6),
        )

    def _last_episode(self) -> EpisodeRecord | None:
        """The last turn's record: in memory, or (after a resume) the log's latest revision."""
        if self._last_record is not None:
            return self._last_record
        turns = self.history()
        if not turns or self.log is None:
            return None
        found = self.log.find(turns[-1].episode_id)
        self._last_record = None if found is None else EpisodeRecord.from_dict(found)
        return self._last_record


def new_conversation_id() -> str:
    return uuid.uuid4().hex[:12]
