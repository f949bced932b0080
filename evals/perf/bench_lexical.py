"""Lexical backend benchmark: indexing throughput and query latency, against bare tantivy.

Run: ``python -m evals.perf.bench_lexical [--datasets chorus homedepot]``.

The reference does the same work with tantivy's own API and nothing of ours: the same schema
and documents, the same analysed term queries, the same stored-document fetch and JSON decode.
The ratio is our time over the reference's; the target is <= 1.3 (and p95 <= 5 ms at 55k).
The title-match rows time the tool path's query (``SearchRequest.title_match``) against the
same clauses written by hand.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from itertools import pairwise
from pathlib import Path

import tantivy

from evals.perf.timing import Latencies, print_table
from tools.catalog.datasets import load_dataset
from tools.catalog.product import Product
from tools.search.request import DEFAULT_BOOSTS, SearchRequest
from tools.search.tantivy_backend import TIE_BREAKER, WRITER_THREADS, TantivyIndex
from tools.search.tantivy_schema import (
    ANALYZER,
    build_analyzer,
    build_schema,
    surface_analyzer,
    to_document,
)
from tools.settings.config import load_settings

QUERIES_PER_DATASET = 1000
WARMUP_QUERIES = 50
#: Every query list is replayed until this many samples exist, so p95 is not a handful of points.
MIN_SAMPLES = 1000
#: Index builds are repeated and the best kept: builds are long enough to be hit by noise.
BUILD_REPEATS = 2
SURFACE = surface_analyzer()


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


def reference_title_clauses(
    schema: tantivy.Schema, analyzer: tantivy.TextAnalyzer, text: str
) -> list[tantivy.Query]:
    """The title match's two clauses, by hand: every term in the title (weight 1) and the
    adjacent word pairs as title phrases (weight 0.5); nothing for fewer than two terms."""
    per_word = [analyzer.analyze(word) for word in SURFACE.analyze(text)]
    single = [terms[0] if len(terms) == 1 else None for terms in per_word]
    distinct = list(dict.fromkeys(t for t in single if t is not None))
    if len(distinct) < 2:
        return []
    every = tantivy.Query.boolean_query(
        [(tantivy.Occur.Must, tantivy.Query.term_query(schema, "title", t)) for t in distinct]
    )
    clauses = [tantivy.Query.boost_query(every, 1.0)]
    pairs = list(dict.fromkeys((a, b) for a, b in pairwise(single) if a and b and a != b))
    if pairs:
        phrases = [
            (tantivy.Occur.Should, tantivy.Query.phrase_query(schema, "title", [a, b]))
            for a, b in pairs
        ]
        clauses.append(tantivy.Query.boost_query(tantivy.Query.boolean_query(phrases), 0.5))
    return clauses


def reference_search(
    index: tantivy.Index, analyzer: tantivy.TextAnalyzer, text: str, *, title_match: bool = False
) -> list:
    """The same dis_max-of-boosted-fields query (with the title match's clauses when asked),
    built by hand, docs fetched and decoded."""
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
    bonus = reference_title_clauses(schema, analyzer, text) if title_match else []
    if bonus:
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, query), *((tantivy.Occur.Should, b) for b in bonus)]
        )
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
        for title_match in (False, True):
            rows.extend(
                _latency_rows(name, queries, ours, ref_index, analyzer, title_match=title_match)
            )
    return rows


def _latency_rows(
    name: str,
    queries: list[str],
    ours: TantivyIndex,
    ref_index: tantivy.Index,
    analyzer: tantivy.TextAnalyzer,
    *,
    title_match: bool,
) -> list[dict[str, object]]:
    """p50 / p95 of the plain query, or of the tool path's query with the title match."""
    for text in queries[:WARMUP_QUERIES]:
        reference_search(ref_index, analyzer, text, title_match=title_match)
        ours.search(SearchRequest(text, title_match=title_match))
    ref_lat, our_lat = Latencies(), Latencies()
    # Interleave so that both sides see the same cache and CPU conditions.
    rounds = max(1, -(-MIN_SAMPLES // len(queries)))
    for text in queries * rounds:
        with ref_lat.measure():
            reference_search(ref_index, analyzer, text, title_match=title_match)
        with our_lat.measure():
            ours.search(SearchRequest(text, title_match=title_match))
    kind = "title-match query" if title_match else "query"
    return [
        {
            "dataset": name,
            "measure": f"{kind} {label} ms ({len(queries)} queries x{rounds})",
            "shopagent": f"{pick(our_lat):.3f}",
            "bare tantivy": f"{pick(ref_lat):.3f}",
            "ratio": pick(our_lat) / pick(ref_lat),
        }
        for label, pick in (("p50", Latencies.p50), ("p95", Latencies.p95))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["chorus", "homedepot"])
    parser.add_argument("--queries", type=int, default=QUERIES_PER_DATASET)
    args = parser.parse_args()
    rows = [row for name in args.datasets for row in bench_dataset(name, args.queries)]
    print_table("lexical backend vs bare tantivy (ratio = ours / reference; target <= 1.3)", rows)


if __name__ == "__main__":
    main()
