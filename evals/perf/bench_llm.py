"""Local model throughput: through ``transformers serve`` at batch 1, in-process at batch 1 and 8.

Run: ``python -m evals.perf.bench_llm [--queries 8] [--max-tokens 64] [--rounds 2]``.

All three paths generate greedily from the same Chorus queries with the same chat template and
tools, so they produce the same tokens and only the way they are produced differs:

- server, batch 1: one OpenAI request at a time to a local ``transformers serve`` (HTTP, JSON,
  the server's own templating and response parsing included);
- direct, batch 1: ``transformers`` ``generate`` in this process, one conversation at a time;
- in-process, batch 8: one left-padded batch of 8 conversations (the rollout path).

Tokens/s counts completion tokens over wall time. The server overhead ratio is server seconds
per token over direct seconds per token (1.00 = free). Each figure is the best of ``--rounds``
(the machine may be shared; the best round is the least disturbed one). ``--threads`` sets the
CPU threads of both the server and this process (on a busy machine 1 thread beat 2 by 4-10x).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from agent.runtime.generation import LocalGenerator
from agent.runtime.llm_client import complete_with_tools, openai_client
from agent.runtime.model_server import serve
from agent.runtime.model_store import ensure_model
from evals.perf.timing import print_table
from evals.perf.tool_call_validity import add_model_options, chorus_queries, model_settings
from tools.settings.llm import LLMSettings

BATCH = 8


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    tokens: int

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def conversation(query: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": query}]


def time_server(llm: LLMSettings, queries: list[str]) -> Run:
    client = openai_client(llm)
    seconds = 0.0
    tokens = 0
    for query in queries:
        started = time.perf_counter()
        response, _ = complete_with_tools(llm, conversation(query), client=client)
        seconds += time.perf_counter() - started
        tokens += response.usage.completion_tokens if response.usage else 0
    return Run(seconds, tokens)


def time_direct(generator: LocalGenerator, queries: list[str], max_tokens: int) -> Run:
    seconds = 0.0
    tokens = 0
    for query in queries:
        started = time.perf_counter()
        (reply,) = generator.generate([conversation(query)], max_new_tokens=max_tokens)
        seconds += time.perf_counter() - started
        tokens += reply.completion_tokens
    return Run(seconds, tokens)


def time_batch(generator: LocalGenerator, queries: list[str], max_tokens: int) -> Run:
    seconds = 0.0
    tokens = 0
    for start in range(0, len(queries), BATCH):
        chunk = [conversation(q) for q in queries[start : start + BATCH]]
        started = time.perf_counter()
        replies = generator.generate(chunk, max_new_tokens=max_tokens)
        seconds += time.perf_counter() - started
        tokens += sum(r.completion_tokens for r in replies)
    return Run(seconds, tokens)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=BATCH)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    add_model_options(parser)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    settings = model_settings(args)
    stored = ensure_model(settings)
    queries = chorus_queries(settings, args.queries)
    generator = LocalGenerator(stored.path, device=args.device)
    runs: dict[str, list[Run]] = {"server": [], "direct": [], "batch": []}
    with serve(settings, stored.name, device=args.device, threads=args.threads) as served:
        llm = replace(served, max_tokens=args.max_tokens, temperature=0.0)
        time_server(llm, queries[:1])  # warm-up: first request pays one-off setup
        time_direct(generator, queries[:1], args.max_tokens)
        for _ in range(args.rounds):
            runs["server"].append(time_server(llm, queries))
            runs["direct"].append(time_direct(generator, queries, args.max_tokens))
            runs["batch"].append(time_batch(generator, queries, args.max_tokens))
    best = {name: max(found, key=lambda r: r.tokens_per_s) for name, found in runs.items()}
    overhead = best["direct"].tokens_per_s / best["server"].tokens_per_s
    rows = [
        {
            "measure": f"{label}",
            "tokens": best[key].tokens,
            "seconds": f"{best[key].seconds:.2f}",
            "tokens/s": f"{best[key].tokens_per_s:.1f}",
        }
        for key, label in (
            ("server", "transformers serve, batch 1 (HTTP)"),
            ("direct", "transformers generate, batch 1"),
            ("batch", f"in-process, batch {BATCH}"),
        )
    ]
    machine = f"{args.device}, {torch.get_num_threads()} torch threads, {platform.machine()}"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print_table(
        f"{stored.name}: {len(queries)} Chorus queries, <= {args.max_tokens} new tokens "
        f"({machine}, load {load:.1f})",
        rows,
    )
    ratios = [
        {"measure": "server overhead (direct tok/s / server tok/s)", "ratio": overhead},
        {
            "measure": "batch 8 speed-up over direct batch 1",
            "ratio": best["batch"].tokens_per_s / best["direct"].tokens_per_s,
        },
    ]
    print_table("Ratios", ratios)
    figures = {
        "model": stored.name,
        "queries": len(queries),
        "max_tokens": args.max_tokens,
        "machine": machine,
        "load_average": load,
        **{f"{k}_tokens_per_s": round(v.tokens_per_s, 2) for k, v in best.items()},
        "server_overhead_ratio": round(overhead, 3),
    }
    print(json.dumps(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
