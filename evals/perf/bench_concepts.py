"""Concept index benchmark: Chroma ingest throughput and dense query latency, against bare chromadb.

Run: ``python -m evals.perf.bench_concepts [--dataset chorus] [--limit N] [--no-reference]
[--backends torch,onnx] [--rounds 2] [--backends-only]``.

First, the embedding backends side by side (``tools.search.embeddings``: sentence-transformers
on torch, the same pipeline exported to ONNX Runtime): each builds the index with
``build_concepts`` in ``--rounds`` rounds, the order reversed every other round (ABBA) so a
load that changes during the run weighs on both; the table gives products per second and per
CPU second and their ratios to the first backend, the time to load each encoder (an ONNX
export included, the first time in a data home) and one query's embedding latency.

The reference calls chromadb directly with the same embedding function, the same document
texts and metadata, and the same batch size: what remains in the ratio is our own code
(record building, filter translation, product decoding). Embedding dominates both sides.

Ingest is measured twice on our side: ``ConceptIndex.index`` (a foreground rebuild) and
``build_concepts``, the resumable build ``make chat`` runs in the background (a progress file
written after every batch, a catalog fingerprint first). Each ingest row also gives products
per CPU second of this process, which moves much less than wall time when other jobs load
the machine; say the load with every figure.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import chromadb

from evals.perf.timing import Latencies, print_table
from tools.catalog.datasets import load_dataset
from tools.catalog.product import Product
from tools.concept_build import build_concepts
from tools.search.chroma_client import persistent_client
from tools.search.chroma_concepts import ConceptIndex
from tools.search.chroma_records import embedding_text, product_from_metadata, record_metadata
from tools.search.embeddings import MiniLMEmbeddingFunction
from tools.settings.config import EMBEDDING_BACKENDS, load_settings

QUERIES = 300
BATCH = 256
ROUNDS = 2


@dataclass(frozen=True, slots=True)
class Ingest:
    """One ingest: wall seconds and this process's CPU seconds (all its threads)."""

    wall_s: float
    cpu_s: float

    @classmethod
    def timed(cls, run: Callable[[], object]) -> Ingest:
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        return cls(time.perf_counter() - wall, time.process_time() - cpu)

    def rates(self, n: int) -> str:
        return f"{n / self.wall_s:,.0f}/s · {n / self.cpu_s:,.0f}/cpu-s"

    def __add__(self, other: Ingest) -> Ingest:
        return Ingest(self.wall_s + other.wall_s, self.cpu_s + other.cpu_s)


def compare_backends(
    dataset: str,
    products: list[Product],
    queries: list[str],
    backends: list[str],
    rounds: int,
    root: Path,
) -> list[dict[str, object]]:
    """``build_concepts`` with each backend, ``rounds`` times in ABBA order; one row each."""
    functions = {name: MiniLMEmbeddingFunction(backend=name) for name in backends}
    loads: dict[str, float] = {}
    for name, function in functions.items():
        started = time.perf_counter()
        loaded = function.encoder().backend  # the ONNX export happens here, if ever
        loads[name] = time.perf_counter() - started
        if loaded != name:
            raise SystemExit(f"backend {name} fell back to {loaded}: see the warning above")
        function(["warm up the model"])
    totals = {name: Ingest(0.0, 0.0) for name in backends}
    for round_ in range(rounds):
        for name in backends if round_ % 2 == 0 else backends[::-1]:
            where = root / f"{name}-{round_}"
            index = ConceptIndex(dataset, path=where / "chroma", embedding_function=functions[name])
            totals[name] += Ingest.timed(partial(build_concepts, index, products, where / "state"))
    latencies = {name: Latencies() for name in backends}
    for text in queries:
        for name, function in functions.items():
            with latencies[name].measure():
                function.embed_query([text])
    first = totals[backends[0]]
    n = len(products) * rounds
    return [
        {
            "dataset": dataset,
            "measure": f"build_concepts, {len(products):,} products x {rounds}",
            "backend": name,
            "products/s": f"{n / total.wall_s:,.1f}",
            "per CPU s": f"{n / total.cpu_s:,.1f}",
            "vs first/s": f"{first.wall_s / total.wall_s:.2f}x",
            "vs first/CPU s": f"{first.cpu_s / total.cpu_s:.2f}x",
            "load s": f"{loads[name]:.1f}",
            "query p50 ms": f"{latencies[name].p50():.1f}",
        }
        for name, total in totals.items()
    ]


def reference_ingest(path: Path, products: list[Product], ef: MiniLMEmbeddingFunction) -> None:
    collection = persistent_client(path).create_collection(
        "reference", embedding_function=ef, configuration={"hnsw": {"space": "cosine"}}
    )
    for start in range(0, len(products), BATCH):
        batch = products[start : start + BATCH]
        collection.upsert(
            ids=[p.id for p in batch],
            documents=[embedding_text(p) for p in batch],
            metadatas=[record_metadata(p) for p in batch],  # type: ignore[misc]
        )


def reference_query(collection: chromadb.Collection, text: str) -> list[Product]:
    found = collection.query(query_texts=[text], n_results=10, include=["metadatas", "distances"])
    return [product_from_metadata(m) for m in (found["metadatas"] or [[]])[0]]  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="chorus")
    parser.add_argument("--limit", type=int, default=None, help="Index only the first N products.")
    parser.add_argument("--queries", type=int, default=QUERIES)
    parser.add_argument(
        "--no-reference", action="store_true", help="Skip bare chromadb (halves the run)."
    )
    parser.add_argument(
        "--backends",
        default=",".join(reversed(EMBEDDING_BACKENDS)),
        help="Embedding backends to compare, the baseline first ('' skips the comparison).",
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="Builds per backend.")
    parser.add_argument(
        "--backends-only", action="store_true", help="Stop after the backend comparison."
    )
    args = parser.parse_args()
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = set(backends) - set(EMBEDDING_BACKENDS)
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}; choose from {EMBEDDING_BACKENDS}")
    dataset = load_dataset(args.dataset, load_settings())
    products = list(dataset.products())[: args.limit]
    queries = [q.text for q in dataset.judgments()][: args.queries]
    if backends:
        with tempfile.TemporaryDirectory() as tmp:
            rows = compare_backends(
                args.dataset, products, queries, backends, args.rounds, Path(tmp)
            )
        print_table("embedding backends (ratios: first backend's time / this one's)", rows)
        if args.backends_only:
            return
    ef = MiniLMEmbeddingFunction()
    ef(["warm up the model"])
    n = len(products)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        reference, ref = None, None
        if not args.no_reference:
            ref = Ingest.timed(lambda: reference_ingest(root / "ref", products, ef))
            reference = persistent_client(root / "ref").get_collection(
                "reference",
                embedding_function=ef,  # type: ignore[arg-type]
            )
        ours = ConceptIndex(args.dataset, path=root / "ours", embedding_function=ef)
        indexed = Ingest.timed(lambda: ours.index(products))
        built = ConceptIndex(args.dataset, path=root / "built", embedding_function=ef)
        background = Ingest.timed(lambda: build_concepts(built, products, root / "state"))
        for label, ingest in (("index", indexed), ("build_concepts", background)):
            row: dict[str, object] = {
                "dataset": args.dataset,
                "measure": f"ingest {n:,} products, {label} (products/s · per CPU s)",
                "shopagent": ingest.rates(n),
            }
            if ref is not None:
                row |= {"bare chromadb": ref.rates(n), "ratio": ingest.wall_s / ref.wall_s}
            rows.append(row)
        if reference is None:
            print_table("concept index ingest (no reference run)", rows)
            return
        for text in queries[:20]:
            reference_query(reference, text)
            ours.search_dense(text, size=10)
        ref_lat, our_lat = Latencies(), Latencies()
        for text in queries:
            with ref_lat.measure():
                reference_query(reference, text)
            with our_lat.measure():
                ours.search_dense(text, size=10)
        for label, pick in (("p50", Latencies.p50), ("p95", Latencies.p95)):
            rows.append(
                {
                    "dataset": args.dataset,
                    "measure": f"dense query {label} ms ({len(queries)} queries)",
                    "shopagent": f"{pick(our_lat):.2f}",
                    "bare chromadb": f"{pick(ref_lat):.2f}",
                    "ratio": pick(our_lat) / pick(ref_lat),
                }
            )
    print_table("concept index vs bare chromadb (ratio = ours / reference; target <= 1.3)", rows)


if __name__ == "__main__":
    main()
