"""Sessions as an eval: what the last turn of each scripted conversation shows, ranked.

``shopagent eval run --sessions FILE`` scores conversations, not queries. Each session
(``tools.catalog.sessions``) stands for one judged query; its turns go through the real
conversation graph one by one (``agent.conversation.scripted_sessions``: constraints,
restarts, references, everything a shopper's chat gets), and the ranking behind the last turn
is scored against the query's judgments: the products shown, in order, then the rest of that
turn's search hits, to ``depth``.

Strategies over sessions (``SESSION_STRATEGIES``), each a row of the same table:

- ``last``: the last message alone through the tool path (respelled, with its title match:
  the ``copy`` strategy of a query run);
- ``all``: every message joined, through the same path;
- ``graph``: the chat without a model: the graph searches its constraint words each turn;
- ``policy``: the chat with the writer (``--model``): the model reads the conversation
  (``agent.protocol.writer_prompts``, the ``conversation`` style) and writes the query;
- ``oracle``: the judged query itself through the tool path: the ceiling.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent.conversation.scripted_sessions import ScriptedSessions, SessionOutcome, SessionProgress
from agent.protocol.writer_prompts import ConversationView, QueryWriter
from evals.strategies import StrategyTrace, copy_strategy
from tools.catalog.sessions import Session
from tools.errors import BadInput
from tools.metrics import Run
from tools.search_tools import SearchToolbox

#: The strategies a session run takes, in the order a summary lists them.
SESSION_STRATEGIES = ("last", "all", "graph", "policy", "oracle")
#: Sessions in flight, so writer calls generated together. Larger than the query eval's
#: batch because a conversation prompt's own part is longer and the generator splits a batch
#: by prompt length over its replicas: on 2 cores, 32 wrote a call in ~190 ms against ~200 ms
#: for 16 (320 Home Depot dev sessions, ``docs/results/performance.md``).
SESSION_BATCH_SIZE = 32
#: Strategies that send one text through the tool path: which text, from a session.
TEXT_OF: dict[str, Callable[[Session], str]] = {
    "last": lambda session: session.turns[-1],
    "all": lambda session: " ".join(session.turns),
    "oracle": lambda session: session.query_text,
}


@dataclass(slots=True)
class SessionRetrieval:
    """A strategy's answers to a set of sessions (keyed by session id), before scoring;
    ``views``: what the writer read at each last turn (graph strategies only)."""

    run: Run
    traces: dict[str, StrategyTrace]
    views: dict[str, ConversationView]
    wall_s: float


def run_sessions(
    strategy: str,
    sessions: Sequence[Session],
    toolbox: SearchToolbox,
    *,
    writer: QueryWriter | None = None,
    model_name: str = "writer",
    dataset: str = "",
    depth: int = 100,
    batch_size: int = SESSION_BATCH_SIZE,
    progress: SessionProgress | None = None,
    name: str = "",
) -> SessionRetrieval:
    """Every session's last-turn ranking under ``strategy`` (``writer``: the policy's model);
    ``name`` names the run (its report, and what ``eval compare`` calls it)."""
    if strategy not in SESSION_STRATEGIES:
        raise BadInput(f"unknown session strategy {strategy!r}; choose one of {SESSION_STRATEGIES}")
    started = time.perf_counter()
    run = Run(name or f"sessions-{strategy}")
    traces: dict[str, StrategyTrace] = {}
    views: dict[str, ConversationView] = {}
    if strategy in TEXT_OF:
        path = copy_strategy(toolbox)
        for done, session in enumerate(sessions, 1):
            results, trace = path.retrieve(TEXT_OF[strategy](session), depth)
            run.add(session.id, [(hit.product_id, hit.score) for hit in results.hits])
            traces[session.id] = trace
            if progress is not None:
                progress(done, len(sessions))
        return SessionRetrieval(run, traces, views, time.perf_counter() - started)
    if strategy == "policy" and writer is None:
        raise BadInput("the 'policy' strategy needs a model to write its search (--model)")
    scripted = (
        ScriptedSessions(
            toolbox,
            author="model",
            writer=writer,  # type: ignore[arg-type]
            model_name=model_name,
            dataset=dataset,
            depth=depth,
            batch_size=batch_size,
        )
        if strategy == "policy"
        else ScriptedSessions(toolbox, dataset=dataset, depth=depth, batch_size=batch_size)
    )
    for outcome in scripted.run(sessions, progress):
        ranking = outcome.last.ranking()
        run.add(outcome.session.id, [(pid, 1.0 / rank) for rank, pid in enumerate(ranking, 1)])
        traces[outcome.session.id] = session_trace(outcome)
        views[outcome.session.id] = outcome.view
    return SessionRetrieval(run, traces, views, time.perf_counter() - started)


def session_trace(outcome: SessionOutcome) -> StrategyTrace:
    """The last turn's first search (what the writer wrote, or the graph's words), the model
    time of every turn, and the rest of the turns' time as search time."""
    last = outcome.last
    model_steps = [s for s in last.steps if s.prompt_messages]
    first = model_steps[0] if model_steps else None
    searched = next((c.arguments for s in last.steps for c in s.tool_calls), {})
    model_ms = sum(r.latency.model_ms for r in outcome.records)
    total_ms = sum(r.latency.total_ms for r in outcome.records)
    failed = last.stop_reason in ("model_error", "timeout")
    return StrategyTrace(
        outcome.session.query_text,
        written=json.dumps(searched, sort_keys=True, ensure_ascii=False),
        raw_output=first.raw_output if first else None,
        parse_class=first.parse_class if first else None,
        problems=tuple(first.problems) if first else (),
        generation_ms=model_ms,
        search_ms=max(0.0, total_ms - model_ms),
        error=f"turn ended: {last.stop_reason}" if failed else None,
    )
