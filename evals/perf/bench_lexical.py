"""Lexical backend benchmark: indexing throughput and query latency, against bare tantivy.

Run: ``python -m evals.perf.bench_lexical [--datasets chorus homedepot]``.

The reference does the same work with tantivy's own API and nothing of ours: the same schema
and documents, the same analysed term queries, the same stored-document fetch and JSON decode.
The ratio is our time over the reference's; the target is <= 1.3 (and p95 <= 5 ms at 55k).
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

import tantivy

from evals.perf.timing import Latencies, print_table
from tools.catalog.datasets import load_dataset
from tools.catalog.product import Product
from tools.search.request import DEFAULT_BOOSTS, SearchRequest
from tools.search.tantivy_backend import TIE_BREAKER, WRITER_THREADS, TantivyIndex
from tools.search.tantivy_schema import ANALYZER, build_analyzer, build_schema, to_document
from tools.settings.config import load_settings

QUERIES_PER_DATASET = 1000
WARMUP_QUERIES = 50
#: Every query list is replayed until this many samples exist, so p95 is not a handful of points.
MIN_SAMPLES = 1000
#: Index builds are repeated and the best kept: builds are long enough to be hit by noise.
BUILD_REPEATS = 2


def reference_index(path: Path, products: list[Product]) -> tuple[tantivy.Index, float]:
    """Bare tantivy: build the same documents and commit once."""
    path.mkdir(parents=True)
    index = tantivy.Index(build_schema(), path=str(path))
    index.register_tokenizer(ANALYZER, build_analyzer())
    started = time.perf_counter()
    writer = index.writer(heap_size=256_000_000, num_threads=WRITER_THREADS)
    for product in products:
        writer.add_document(to_document(product))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    return index, time.perf_counter() - started


def reference_search(index: tantivy.Index, analyzer: tantivy.TextAnalyzer, text: str) -> list:
    """The same dis_max-of-boosted-fields query, built by hand, docs fetched and decoded."""
    schema = index.schema
    terms = list(dict.fromkeys(analyzer.analyze(text)))
    if not terms:
        query = tantivy.Query.all_query()
    else:
        fields = [
            tantivy.Query.boost_query(
                tantivy.Query.boolean_query(
                    [
                        (
                            tantivy.Occur.Should,
                            tantivy.Query.term_query(schema, field, t, index_option="freq"),
                        )
                        for t in terms
                    ]
                ),
                boost,
            )
            for field, boost in DEFAULT_BOOSTS.items()
        ]
        query = tantivy.Query.disjunction_max_query(fields, tie_breaker=TIE_BREAKER)
    searcher = index.searcher()
    found = searcher.search(query, limit=10, count=True)
    return [json.loads(searcher.doc(address).get_first("doc")) for _, address in found.hits]


def bench_dataset(name: str, queries_limit: int) -> list[dict[str, object]]:
    settings = load_settings()
    dataset = load_dataset(name, settings)
    products = list(dataset.products())
    queries = [q.text for q in dataset.judgments()][:queries_limit]
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ref_seconds = our_seconds = float("inf")
        for attempt in range(BUILD_REPEATS):
            gc.collect()
            ref_index, seconds = reference_index(Path(tmp) / f"ref{attempt}", products)
            ref_seconds = min(ref_seconds, seconds)
            gc.collect()
            started = time.perf_counter()
            ours = TantivyIndex(Path(tmp) / f"ours{attempt}", create=True)
            ours.index(products)
            our_seconds = min(our_seconds, time.perf_counter() - started)
        n = len(products)
        rows.append(
            {
                "dataset": name,
                "measure": f"index {n:,} products (products/s)",
                "shopagent": f"{n / our_seconds:,.0f}",
                "bare tantivy": f"{n / ref_seconds:,.0f}",
                "ratio": our_seconds / ref_seconds,
            }
        )
        analyzer = build_analyzer()
        for text in queries[:WARMUP_QUERIES]:
            reference_search(ref_index, analyzer, text)
            ours.search(SearchRequest(text))
        ref_lat, our_lat = Latencies(), Latencies()
        # Interleave so that both sides see the same cache and CPU conditions.
        rounds = max(1, -(-MIN_SAMPLES // len(queries)))
        for text in queries * rounds:
            with ref_lat.measure():
                reference_search(ref_index, analyzer, text)
            with our_lat.measure():
                ours.search(SearchRequest(text))
        for label, pick in (("p50", Latencies.p50), ("p95", Latencies.p95)):
            rows.append(
                {
                    "dataset": name,
                    "measure": f"query {label} ms ({len(queries)} queries x{rounds})",
                    "shopagent": f"{pick(our_lat):.3f}",
                    "bare tantivy": f"{pick(ref_lat):.3f}",
                    "ratio": pick(our_lat) / pick(ref_lat),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["chorus", "homedepot"])
    parser.add_argument("--queries", type=int, default=QUERIES_PER_DATASET)
    args = parser.parse_args()
    rows = [row for name in args.datasets for row in bench_dataset(name, args.queries)]
    print_table("lexical backend vs bare tantivy (ratio = ours / reference; target <= 1.3)", rows)


if __name__ == "__main__":
    main()
