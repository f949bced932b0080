"""Eval suite benchmark: a full Chorus eval of the strategies without a model (raw, rm3, ...).

Run: ``python -m evals.perf.bench_eval [--dataset chorus] [--split all] [--cores 2]``.

Each strategy is timed as ``shopagent eval run`` runs it (judgments, split, retrieval 100
deep, scoring, run file, reports and plot; ``PLAIN_STRATEGIES`` of the registry,
``agent.protocol.strategies``), in one process, so the first dense strategy pays the encoder's load
once, as the command would. Target: all three in under 2 minutes on 2 cores. The reference
is the same retrieval calls made bare, in a plain loop over the queries with no suite around
them, both warm, best of ``--repeats``: the ratio is what the suite's loop adds.
Missing indexes are built first, untimed (the concept index takes minutes).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from agent.protocol.strategies import STRATEGIES
from evals.perf.timing import print_table
from evals.strategies import PLAIN_STRATEGIES, build_strategy
from evals.suite import DEPTH, EvalOptions, evaluate_strategy, load_judgments, run_eval
from tools.catalog.splits import select_split
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings, load_settings
from tools.stores import open_concepts, open_lexical

TARGET_S = 120.0


def limit_cores(cores: int) -> int:
    """Pin this process (and torch's thread pool) to ``cores`` CPUs, as on a small machine."""
    available = sorted(os.sched_getaffinity(0))
    chosen = available[:cores]
    os.sched_setaffinity(0, chosen)
    import torch

    torch.set_num_threads(len(chosen))
    return len(chosen)


def ensure_indexes(settings: Settings, dataset: str, *, concepts: bool = True) -> None:
    """Build whichever index is missing (untimed; the bench is about the eval); the concept
    index only when a strategy reads it."""
    from tools.catalog.datasets import load_dataset

    missing = [
        (label, opener)
        for label, path, opener in (
            (
                "lexical",
                settings.tantivy_dir(dataset),
                lambda: open_lexical(settings, dataset, create=True),
            ),
            ("concepts", settings.chroma_dir(dataset), lambda: open_concepts(settings, dataset)),
        )
        if not path.is_dir() and (concepts or label == "lexical")
    ]
    if not missing:
        return
    products = list(load_dataset(dataset, settings).products())
    for label, opener in missing:
        print(f"building the {label} index of {len(products):,} products (untimed) ...", flush=True)
        started = time.perf_counter()
        opener().index(products)
        print(f"  {time.perf_counter() - started:.0f} s", flush=True)


def warm_seconds(
    settings: Settings, dataset: str, split: str, strategy: str, repeats: int
) -> tuple[float, float]:
    """Best of ``repeats``, alternating: the suite's retrieval loop (traces included) and the
    same backend calls in a bare loop, over one warm toolbox."""
    judgments = select_split(load_judgments(settings, dataset), dataset, split)
    texts = [query.text for query in judgments]
    toolbox = SearchToolbox(settings, dataset)
    built = build_strategy(strategy, toolbox)
    tool = built.tool  # type: ignore[attr-defined]
    request_for = built.request_for  # type: ignore[attr-defined]
    toolbox.run(tool, request_for(texts[0], DEPTH))  # open and warm
    suite, bare = [], []
    for _ in range(repeats):
        _, report = evaluate_strategy(built, judgments, name="warm", dataset=dataset, split=split)
        suite.append(report.wall_s)
        started = time.perf_counter()
        for text in texts:
            toolbox.run(tool, request_for(text, DEPTH))
        bare.append(time.perf_counter() - started)
    return min(suite), min(bare)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="chorus")
    parser.add_argument("--split", default="all")
    parser.add_argument("--cores", type=int, default=2, help="CPUs to pin the run to.")
    parser.add_argument("--repeats", type=int, default=3, help="Warm passes (best is kept).")
    parser.add_argument(
        "--strategies",
        default=",".join(PLAIN_STRATEGIES),
        help="Comma-separated subset of the strategies without a model (default: all of them; "
        f"{','.join(s for s in PLAIN_STRATEGIES if 'concepts' not in STRATEGIES[s].indexes)} "
        "need no concept index).",
    )
    args = parser.parse_args()
    strategies = [name.strip() for name in args.strategies.split(",") if name.strip()]
    unknown = sorted(set(strategies) - set(PLAIN_STRATEGIES))
    if unknown or not strategies:
        parser.error(f"--strategies: choose from {', '.join(PLAIN_STRATEGIES)}")
    cores = limit_cores(args.cores)
    settings = load_settings()
    concepts = any("concepts" in STRATEGIES[name].indexes for name in strategies)
    ensure_indexes(settings, args.dataset, concepts=concepts)

    rows: list[dict[str, object]] = []
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in strategies:
            started = time.perf_counter()
            options = EvalOptions(args.dataset, args.split, strategy, runs_root=Path(tmp))
            outcome = run_eval(settings, options)
            seconds = time.perf_counter() - started
            total += seconds
            warm, bare = warm_seconds(settings, args.dataset, args.split, strategy, args.repeats)
            rows.append(
                {
                    "dataset": args.dataset,
                    "measure": f"{strategy}: {outcome.report.queries} queries",
                    "eval run s": f"{seconds:.2f}",
                    "warm suite s (best)": f"{warm:.2f}",
                    "warm bare s (best)": f"{bare:.2f}",
                    "ndcg@10": f"{outcome.report.means['ndcg@10']:.4f}",
                    "ratio": warm / bare,
                }
            )
    judged = len(select_split(load_judgments(settings, args.dataset), args.dataset, args.split))
    print_table(
        f"full {args.dataset} {args.split} eval ({judged} queries) on {cores} cores: "
        f"{total:.1f} s for {', '.join(strategies)} (target < {TARGET_S:.0f} s; "
        "ratio = warm suite retrieval / warm bare calls)",
        rows,
    )


if __name__ == "__main__":
    main()
