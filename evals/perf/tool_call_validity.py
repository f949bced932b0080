"""How often the local model answers a shopping query with a valid tool call (the RL baseline).

Run: ``python -m evals.perf.tool_call_validity [--queries 50] [--via-server] [--jsonl out.jsonl]``.

Each of 50 Chorus queries (a seeded sample) is sent as one user turn with the agent's tools and
the one-shot template; every reply is classified valid / repaired / invalid by
``agent.protocol.tool_calls``. In-process generation is the default (same template, no HTTP); with
``--via-server`` the same queries go through the OpenAI protocol (``SHOPAGENT_LLM_BASE_URL`` if
set, else a local ``transformers serve``), and the replies are classified by the same rules.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from agent.protocol.tool_calls import ParseClass, ToolCallParse
from agent.runtime.generation import LocalGenerator
from agent.runtime.llm_client import complete_with_tools, openai_client
from agent.runtime.model_server import llm_endpoint
from agent.runtime.model_store import ensure_model
from evals.perf.timing import print_table
from tools.catalog.datasets import load_dataset
from tools.settings.config import Settings, load_settings

DEFAULT_QUERIES = 50
SAMPLE_SEED = 0
BATCH_SIZE = 8
MAX_NEW_TOKENS = 96
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def chorus_queries(settings: Settings, count: int, seed: int = SAMPLE_SEED) -> list[str]:
    """``count`` Chorus query texts: a seeded sample, so every run measures the same ones."""
    if settings.data_dir is None and SHARED_DATA.is_dir():
        settings = replace(settings, data_dir=SHARED_DATA)
    texts = sorted(query.text for query in load_dataset("chorus", settings).judgments())
    return random.Random(seed).sample(texts, min(count, len(texts)))


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--device``, ``--threads``: what every local-model benchmark runs with."""
    parser.add_argument("--model", help="stored model name (default: settings.llm.model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="CPU threads (server and in-process)")


def model_settings(args: argparse.Namespace) -> Settings:
    """Settings for ``--model``, with torch held to ``--threads`` before any model loads."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return load_settings({"llm": {"model": args.model}})


def measure_in_process(
    settings: Settings, queries: list[str], *, device: str, threads: int | None = None
) -> list[tuple[str, str, ToolCallParse]]:
    generator = LocalGenerator(ensure_model(settings).path, device=device)
    out: list[tuple[str, str, ToolCallParse]] = []
    for start in range(0, len(queries), BATCH_SIZE):
        chunk = queries[start : start + BATCH_SIZE]
        replies = generator.generate(
            [[{"role": "user", "content": q}] for q in chunk], max_new_tokens=MAX_NEW_TOKENS
        )
        out.extend((q, r.text, r.parsed) for q, r in zip(chunk, replies, strict=True))
    return out


def measure_via_server(
    settings: Settings, queries: list[str], *, device: str, threads: int | None = None
) -> list[tuple[str, str, ToolCallParse]]:
    out: list[tuple[str, str, ToolCallParse]] = []
    with llm_endpoint(settings, device=device, threads=threads) as llm:
        llm = replace(llm, max_tokens=MAX_NEW_TOKENS, temperature=0.0)
        client = openai_client(llm)
        for query in queries:
            response, parsed = complete_with_tools(
                llm, [{"role": "user", "content": query}], client=client
            )
            message = response.choices[0].message
            raw = {"content": message.content, "tool_calls": message.model_dump()["tool_calls"]}
            out.append((query, json.dumps(raw), parsed))
    return out


def summarise(results: list[tuple[str, str, ToolCallParse]]) -> dict[str, Any]:
    classes = Counter(parsed.parse_class for _, _, parsed in results)
    tools = Counter(parsed.calls[0].name for _, _, parsed in results if parsed.calls)
    verbatim = sum(
        1
        for query, _, parsed in results
        if parsed.calls and parsed.calls[0].arguments.get("query", "").lower() == query.lower()
    )
    total = len(results)
    return {
        "turns": total,
        **{c.value: classes.get(c, 0) for c in ParseClass},
        "valid_share": classes.get(ParseClass.VALID, 0) / total if total else 0.0,
        "usable_share": (total - classes.get(ParseClass.INVALID, 0)) / total if total else 0.0,
        "first_tool": dict(tools),
        "query_copied_verbatim": verbatim,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=DEFAULT_QUERIES)
    parser.add_argument("--via-server", action="store_true")
    add_model_options(parser)
    parser.add_argument("--jsonl", type=Path, help="write every query, reply and class here")
    args = parser.parse_args(argv)

    settings = model_settings(args)
    queries = chorus_queries(settings, args.queries)
    started = time.perf_counter()
    measure = measure_via_server if args.via_server else measure_in_process
    results = measure(settings, queries, device=args.device, threads=args.threads)
    seconds = time.perf_counter() - started
    summary = summarise(results)
    path = "server" if args.via_server else "in-process"
    print_table(
        f"Tool-call validity, {summary['turns']} Chorus queries ({path}, {seconds:.0f}s)",
        [
            {
                "measure": "valid",
                "turns": summary["valid"],
                "share": f"{summary['valid_share']:.0%}",
            },
            {"measure": "repaired", "turns": summary["repaired"], "share": ""},
            {"measure": "invalid", "turns": summary["invalid"], "share": ""},
            {
                "measure": "usable (valid + repaired)",
                "turns": summary["turns"] - summary["invalid"],
                "share": f"{summary['usable_share']:.0%}",
            },
            {
                "measure": "query copied verbatim",
                "turns": summary["query_copied_verbatim"],
                "share": "",
            },
        ],
    )
    print(json.dumps(summary))
    if args.jsonl:
        with args.jsonl.open("w", encoding="utf-8") as handle:
            for query, raw, parsed in results:
                record = {
                    "query": query,
                    "reply": raw,
                    "class": parsed.parse_class.value,
                    "calls": [{"name": c.name, "arguments": c.arguments} for c in parsed.calls],
                    "problems": list(parsed.problems),
                }
                handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
