"""Agent turn latency with the real local model, split into model time and graph + tool time.

Run: ``python -m evals.perf.bench_agent [--dataset chorus] [--queries 10]`` after
``shopagent index --dataset chorus`` (the lexical index is enough; a missing concept index only
costs the fallback path). Each Chorus query is one fresh conversation through ``ChatSession``
against a local ``transformers serve``; the split comes from the trajectory records the
session writes. Target: graph + tools <= 10% of the turn.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver

from agent.conversation.session import ChatSession
from agent.conversation.state import AgentLimits
from agent.runtime.llm_client import chat_model
from agent.runtime.model_server import llm_endpoint
from agent.trajectory.log import TrajectoryLog
from evals.perf.timing import Latencies, print_table
from tools.catalog.datasets import load_dataset
from tools.search_tools import SearchToolbox
from tools.settings.config import load_settings


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
    args = parser.parse_args()
    settings = load_settings()
    stop = () if args.no_stop else settings.llm.stop
    settings = replace(settings, llm=replace(settings.llm, max_tokens=args.max_tokens, stop=stop))
    queries = [q.text for q in load_dataset(args.dataset, settings).judgments()][: args.queries]
    limits = AgentLimits(turn_timeout_s=600)
    with tempfile.TemporaryDirectory() as tmp, llm_endpoint(settings) as llm:
        log = TrajectoryLog(Path(tmp) / "bench.jsonl")
        toolbox = SearchToolbox(settings, args.dataset)
        for text in queries:
            chat = ChatSession(
                chat_model(llm),
                toolbox,
                checkpointer=InMemorySaver(),
                log=log,
                dataset=args.dataset,
                limits=limits,
            )
            for _ in chat.send(text):
                pass
        records = log.latest()
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
    title = f"agent turns with {llm.model} (stop: {stops}): graph + tools = {share:.2%} of turn"
    print_table(title, rows)


if __name__ == "__main__":
    main()
