"""Agent turn latency with the real local model, split into model time and graph + tool time.

Run: ``python -m evals.perf.bench_agent [--dataset chorus] [--queries 10]`` after
``shopagent index --dataset chorus`` (the lexical index is enough; a missing concept index only
costs the fallback path). Each Chorus query is one fresh conversation through ``ChatSession``
against a local ``transformers serve``, with the prose mode the chat would use (``[llm] prose``;
``auto`` is ``composed`` for the local model: the model writes the search, the graph the reply).
The model is warmed as ``shopagent chat`` does while the shopper types the first message, so
the first turn counts like any other. Then one five-turn conversation (a negated budget, "only
Logitech", "the second one", "compare 1 and 2", "cheaper") runs, and its transcript is printed
with each turn's latency. The split comes from the trajectory records the session writes.
Target (issue 14, idle 2 cores): turn p50 <= 5 s, p95 <= 15 s.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver
from rich.console import Console
from rich.text import Text

from agent.conversation.session import ChatSession
from agent.conversation.state import AgentLimits, FinalAnswer
from agent.runtime.llm_client import chat_model
from agent.runtime.model_server import llm_endpoint
from agent.trajectory.log import TrajectoryLog
from evals.perf.timing import Latencies, print_table
from tools.catalog.datasets import load_dataset
from tools.search_tools import SearchToolbox
from tools.settings.config import load_settings
from tools.settings.llm import prose_mode

FIVE_TURNS = (
    "I want a wireless mouse that should not cost more than 60 dollars",
    "only Logitech",
    "the second one",
    "compare 1 and 2",
    "cheaper",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="chorus")
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument(
        "--no-stop",
        action="store_true",
        help="send no stop strings (what a reply costs when the model parrots tool data)",
    )
    parser.add_argument(
        "--no-conversation", action="store_true", help="skip the five-turn conversation"
    )
    args = parser.parse_args()
    settings = load_settings()
    prose = prose_mode(settings.llm)  # before serving: serving fills in base_url
    stop = () if args.no_stop else settings.llm.stop
    settings = replace(settings, llm=replace(settings.llm, max_tokens=args.max_tokens, stop=stop))
    queries = [q.text for q in load_dataset(args.dataset, settings).judgments()][: args.queries]
    limits = AgentLimits(turn_timeout_s=600)
    console = Console(width=160)
    with tempfile.TemporaryDirectory() as tmp, llm_endpoint(settings) as llm:
        log = TrajectoryLog(Path(tmp) / "bench.jsonl")
        toolbox = SearchToolbox(settings, args.dataset)

        def session() -> ChatSession:
            return ChatSession(
                chat_model(llm),
                toolbox,
                checkpointer=InMemorySaver(),
                log=log,
                dataset=args.dataset,
                limits=limits,
                prose=prose,  # type: ignore[arg-type]
            )

        for number, text in enumerate(queries):
            chat = session()
            if number == 0:
                chat.warm_up().join()  # what `shopagent chat` does while the shopper types
            for _ in chat.send(text):
                pass
        records = log.latest()
        if not args.no_conversation:
            conversation(session(), console)
    total, model, overhead = Latencies(), Latencies(), Latencies()
    for record in records:
        latency = record["latency"]
        total.samples_ms.append(latency["total_ms"])
        model.samples_ms.append(latency["model_ms"])
        overhead.samples_ms.append(latency["tool_ms"] + latency["graph_ms"])
    share = sum(overhead.samples_ms) / sum(total.samples_ms)
    rows = [
        {
            "measure": f"turn ms ({len(records)} turns)",
            "p50": f"{total.p50():,.0f}",
            "p95": f"{total.p95():,.0f}",
        },
        {"measure": "model ms", "p50": f"{model.p50():,.0f}", "p95": f"{model.p95():,.0f}"},
        {
            "measure": "graph + tools ms",
            "p50": f"{overhead.p50():,.1f}",
            "p95": f"{overhead.p95():,.1f}",
        },
    ]
    stops = ", ".join(llm.stop or ()) or "none"
    title = (
        f"agent turns with {llm.model} (prose: {prose}, stop: {stops}): "
        f"graph + tools = {share:.2%} of turn"
    )
    print_table(title, rows)


def conversation(chat: ChatSession, console: Console) -> None:
    """The five-turn conversation, printed as a transcript with each turn's latency."""
    for text in FIVE_TURNS:
        answer: FinalAnswer | None = None
        for event in chat.send(text):
            if isinstance(event, FinalAnswer):
                answer = event
        record = chat.last_episode
        seconds = record.latency.total_ms / 1000 if record is not None else float("nan")
        console.print(Text(f"you> {text}    [{seconds:.2f} s]", style="bold"))
        if answer is None:
            continue
        console.print(Text(f"assistant> {answer.text}"))
        if answer.filters and answer.products:
            console.print(Text(f"searched: {answer.filters}", style="dim"))
        for product in answer.products:
            console.print(
                Text(f"  {product.position}. {product.title} · {product.brand} · {product.price}")
            )


if __name__ == "__main__":
    main()
