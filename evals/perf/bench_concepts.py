"""Concept index benchmark: Chroma ingest throughput and dense query latency, against bare chromadb.

Run: ``python -m evals.perf.bench_concepts [--dataset chorus] [--limit N]``.

The reference calls chromadb directly with the same embedding function, the same document
texts and metadata, and the same batch size: what remains in the ratio is our own code
(record building, filter translation, product decoding). Embedding dominates both sides.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

import chromadb

from evals.perf.timing import Latencies, print_table
from tools.catalog.datasets import load_dataset
from tools.catalog.product import Product
from tools.search.chroma_client import persistent_client
from tools.search.chroma_concepts import ConceptIndex
from tools.search.chroma_records import embedding_text, product_from_metadata, record_metadata
from tools.search.embeddings import MiniLMEmbeddingFunction
from tools.settings.config import load_settings

QUERIES = 300
BATCH = 256


def reference_ingest(
    path: Path, products: list[Product], ef: MiniLMEmbeddingFunction
) -> tuple[chromadb.Collection, float]:
    collection = persistent_client(path).create_collection(
        "reference", embedding_function=ef, configuration={"hnsw": {"space": "cosine"}}
    )
    started = time.perf_counter()
    for start in range(0, len(products), BATCH):
        batch = products[start : start + BATCH]
        collection.upsert(
            ids=[p.id for p in batch],
            documents=[embedding_text(p) for p in batch],
            metadatas=[record_metadata(p) for p in batch],  # type: ignore[misc]
        )
    return collection, time.perf_counter() - started


def reference_query(collection: chromadb.Collection, text: str) -> list[Product]:
    found = collection.query(query_texts=[text], n_results=10, include=["metadatas", "distances"])
    return [product_from_metadata(m) for m in (found["metadatas"] or [[]])[0]]  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="chorus")
    parser.add_argument("--limit", type=int, default=None, help="Index only the first N products.")
    parser.add_argument("--queries", type=int, default=QUERIES)
    args = parser.parse_args()
    dataset = load_dataset(args.dataset, load_settings())
    products = list(dataset.products())[: args.limit]
    queries = [q.text for q in dataset.judgments()][: args.queries]
    ef = MiniLMEmbeddingFunction()
    ef(["warm up the model"])
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        gc.collect()
        reference, ref_seconds = reference_ingest(Path(tmp) / "ref", products, ef)
        gc.collect()
        ours = ConceptIndex(args.dataset, path=Path(tmp) / "ours", embedding_function=ef)
        started = time.perf_counter()
        ours.index(products)
        our_seconds = time.perf_counter() - started
        n = len(products)
        rows.append(
            {
                "dataset": args.dataset,
                "measure": f"ingest {n:,} products (products/s)",
                "shopagent": f"{n / our_seconds:,.0f}",
                "bare chromadb": f"{n / ref_seconds:,.0f}",
                "ratio": our_seconds / ref_seconds,
            }
        )
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
