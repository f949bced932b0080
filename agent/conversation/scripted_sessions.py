"""Scripted sessions through the conversation graph: each turn as a shopper's chat runs it.

Why here, below the evals and the RL job: ``shopagent eval run --sessions`` scores what the
last turn of each session (``tools.catalog.sessions``) shows, and session training data
needs what the writer reads at that turn (``agent.conversation.writer.conversation_view``);
both must run the same graph the chat runs, with nothing logged.

Sessions run in threads; with a model writing the searches, the writer's calls are generated
``batch_size`` at a time (``agent.runtime.writer_batches``) and twice as many sessions are in
flight, so one batch's sessions run their graph turns (Python, one core) while the next batch
generates (CTranslate2, the other core; ``docs/results/performance.md`` has the rates). A turn
checkpoints once, when it ends (``durability="exit"``): nothing reads a session's state
between its nodes, and the per-node checkpoints of a state holding 100 products a search were
a third of a graph turn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from langgraph.checkpoint.memory import InMemorySaver

from agent.conversation.deps import AgentDeps, AgentLimits, AgentToolbox, QueryAuthor
from agent.conversation.graph import EpisodeRecorded, build_graph, turn_input
from agent.conversation.session import RECURSION_LIMIT
from agent.conversation.state import checkpoint_serde, read_state
from agent.conversation.writer import conversation_view
from agent.protocol.writer_prompts import ConversationView, QueryWriter
from agent.runtime.writer_batches import WriterBatches, WriterChatModel
from agent.trajectory.log import EpisodeRecord
from tools.catalog.sessions import Session
from tools.errors import BackendError

#: ``progress(done, total)`` after every session.
SessionProgress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    """One session's turns as the graph recorded them, and what the writer read (or, with
    the graph writing, would have read) at the last turn."""

    session: Session
    records: tuple[EpisodeRecord, ...]
    view: ConversationView

    @property
    def last(self) -> EpisodeRecord:
        return self.records[-1]


def no_model(prompts: Sequence[object]) -> list[str]:
    """The writer of a run where the graph writes every search: never called."""
    raise BackendError("the graph writes this run's searches: no model runs")


class ScriptedSessions:
    """Sessions through one compiled graph, in threads, nothing logged.

    ``author="graph"``: the graph searches its constraint words (no model); ``"model"``:
    ``writer`` writes each search from the ``conversation`` prompt.
    """

    def __init__(
        self,
        toolbox: AgentToolbox,
        *,
        author: QueryAuthor = "graph",
        writer: QueryWriter = no_model,
        model_name: str = "graph",
        dataset: str = "",
        depth: int = 100,
        batch_size: int = 16,
        in_flight: int | None = None,
    ) -> None:
        self.batch_size = batch_size
        #: sessions run at once: twice a batch with a model, so generation and graph overlap
        self.in_flight = in_flight or (2 * batch_size if author == "model" else batch_size)
        self.checkpoints = InMemorySaver(serde=checkpoint_serde())
        self.batches = WriterBatches(writer, batch_size)
        deps = AgentDeps(
            toolbox=toolbox,
            # the ranking behind the last turn is read to ``depth``; the turn's deadline is
            # generous because a turn's model call waits for its batch
            limits=AgentLimits(results_per_search=depth, turn_timeout_s=300, tool_timeout_s=120),
            log=None,
            model_id=model_name,
            dataset=dataset,
            source="eval",
            prose="composed",
            writer_style="conversation",
            query_author=author,
        )
        self.graph = build_graph(WriterChatModel(self.batches, model_name), deps, self.checkpoints)
        self._done = 0
        self._lock = threading.Lock()

    def run(
        self, sessions: Sequence[Session], progress: SessionProgress | None = None
    ) -> list[SessionOutcome]:
        """Every session's outcome, in the order given."""
        self._done = 0

        def one(session: Session) -> SessionOutcome:
            outcome = self.session(session)
            if progress is not None:
                with self._lock:
                    self._done += 1
                    progress(self._done, len(sessions))
            return outcome

        with ThreadPoolExecutor(self.in_flight, thread_name_prefix="session") as pool:
            return list(pool.map(one, sessions))

    def session(self, session: Session) -> SessionOutcome:
        """One session, turn by turn; its checkpoints are dropped once it is done."""
        thread = f"session-{session.id}"
        config = {"configurable": {"thread_id": thread}, "recursion_limit": RECURSION_LIMIT}
        records: list[EpisodeRecord] = []
        try:
            for text in session.turns:
                record = None
                graph_input = turn_input(text, conversation_id=thread)
                events = self.graph.stream(
                    graph_input, config, stream_mode="custom", durability="exit"
                )
                for event in events:
                    if isinstance(event, EpisodeRecorded):
                        record = event.record
                if record is None:
                    raise RuntimeError(f"session {session.id}: a turn ended without a record")
                records.append(record)
            view = conversation_view(read_state(self.graph.get_state(config).values))
        finally:
            self.checkpoints.delete_thread(thread)
        return SessionOutcome(session, tuple(records), view)
