"""The concept index: products embedded with MiniLM in Chroma, searched three dense ways.

RecLLM's retrieval strategies, minus the lexical one (which lives in the lexical backends):

- ``search_concepts``: one query per concept the LLM extracted ("quiet", "for gaming"),
  fused with Reciprocal Rank Fusion, so products that fit several concepts rise;
- ``search_dense``: the whole request embedded once (a plain dual encoder);
- ``lookup_titles`` ("direct"): titles the LLM imagines, matched to real catalog products.

``search(request)`` is ``search_dense``, so the index also serves as a ``SearchBackend``.
One collection per dataset, cosine space. Every hit is checked against
``SearchFilters.matches`` (the reference semantics) after Chroma has filtered, so no hit
ever violates the filters.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.errors import NotFoundError

from tools.catalog.product import Product
from tools.errors import BadInput
from tools.search.backend import IndexMissing, Progress, SearchError
from tools.search.chroma_build_state import check_searchable
from tools.search.chroma_client import (
    ChromaServer,
    http_client,
    parse_chroma_url,
    persistent_client,
    server_errors,
)
from tools.search.chroma_records import (
    chroma_where,
    embedding_text,
    product_from_metadata,
    record_metadata,
)
from tools.search.direct_lookup import interleave, rank_by_title
from tools.search.embeddings import MiniLMEmbeddingFunction
from tools.search.fusion import DEFAULT_K, reciprocal_rank_fusion
from tools.search.request import MAX_SIZE, SearchFilters, SearchRequest
from tools.search.results import SearchResults, ranked
from tools.settings.config import Settings

#: Products per Chroma write (the client's own limit is lower on some servers). One write is
#: one embedding call and one step of a resumable build: a kill loses at most one write.
#: 512 measured 5-10% fewer products per CPU second than 1024 (noisy, loaded machine).
WRITE_BATCH = 1024
#: Hits each concept contributes to the fusion; deeper lists let agreement count.
CONCEPT_DEPTH = 50
#: Candidates per imagined title that the string similarity re-ranks.
TITLE_CANDIDATES = 20
#: Extra hits fetched so that dropping a (rare) filter false positive still fills the page.
VERIFY_SLACK = 5

_NAME_CHARS = re.compile(r"[^a-zA-Z0-9._-]+")

Candidates = list[tuple[Product, float]]
T = TypeVar("T")


def collection_name(dataset: str) -> str:
    """A Chroma-legal collection name for a dataset (3-512 chars of ``[a-zA-Z0-9._-]``)."""
    cleaned = _NAME_CHARS.sub("-", dataset.strip()).strip("-._")
    if not cleaned:
        raise BadInput(f"bad dataset name {dataset!r}")
    return f"products-{cleaned}"


class ConceptIndex:
    """A dataset's products in one Chroma collection, on disk or on a Chroma server."""

    name = "concepts"

    def __init__(
        self,
        dataset: str,
        *,
        path: Path | None = None,
        url: str | None = None,
        embedding_function: MiniLMEmbeddingFunction | None = None,
        build_dir: Path | None = None,
        write_batch: int = WRITE_BATCH,
    ) -> None:
        """``build_dir`` is where a background build keeps its lock and progress files
        (``tools.search.chroma_build_state``); while that build runs, reads raise
        ``IndexBuilding`` instead of touching a collection another process is writing.
        ``write_batch`` caps the products per write (the unit a resumed build skips)."""
        if write_batch < 1:
            raise ValueError(f"write_batch must be at least 1, got {write_batch}")
        if (path is None) == (url is None):
            raise ValueError("give exactly one of path (embedded Chroma) or url (Chroma server)")
        self.dataset = dataset
        self.collection_name = collection_name(dataset)
        self.path = path
        self.server: ChromaServer | None = None if url is None else parse_chroma_url(url)
        self.embedding_function = embedding_function or MiniLMEmbeddingFunction()
        self.build_dir = build_dir
        self.write_batch = write_batch
        self._client: ClientAPI | None = None
        self._collection: Collection | None = None
        #: One thread opens the client and the collection: the chat's warm-up opens them
        #: while its first turn may already need them (reentrant: ``_open`` connects).
        self._open_lock = threading.RLock()
        #: Times the collection was opened (to read or to build): a search after a warm-up
        #: (``tools.search_tools.SearchToolbox.warm``) opens none.
        self.opens = 0

    @classmethod
    def from_settings(cls, settings: Settings, dataset: str) -> ConceptIndex:
        """The server at ``settings.chroma_url`` if set, else the dataset's directory."""
        build_dir = settings.index_dir(dataset)
        if settings.chroma_url:
            return cls(dataset, url=settings.chroma_url, build_dir=build_dir)
        return cls(dataset, path=settings.chroma_dir(dataset), build_dir=build_dir)

    @property
    def location(self) -> str:
        return self.server.url if self.server is not None else str(self.path)

    # -- write side -------------------------------------------------------------------------

    def index(self, products: Iterable[Product], progress: Progress | None = None) -> int:
        """Replace the collection with ``products``; ``progress`` gets each batch's size."""
        with self._errors():
            client = self._connect()
            self._collection = None
            with suppress(NotFoundError):
                client.delete_collection(self.collection_name)
            collection = self._open(create=True)
            return self._write(collection, products, progress)

    def upsert(self, products: Iterable[Product], progress: Progress | None = None) -> int:
        """Add or replace products in place (creating the collection if needed).

        Each write is one Chroma upsert of at most ``WRITE_BATCH`` products; ``progress`` gets
        each write's size after it is stored, which is what a resumable build counts on.
        """
        with self._errors():
            return self._write(self._open(create=True), products, progress)

    def reset(self) -> None:
        """Drop the collection (if any); the next write starts an empty one."""
        with self._errors():
            client = self._connect()
            self._collection = None
            with suppress(NotFoundError):
                client.delete_collection(self.collection_name)

    def stored_ids(self) -> set[str]:
        """The ids of every stored product (none when there is no collection yet)."""
        with self._errors():
            collection = self._open(create=True)
            total = collection.count()
            ids: set[str] = set()
            step = self._batch_size()
            for offset in range(0, total, step):
                ids.update(collection.get(include=[], limit=step, offset=offset)["ids"])
            return ids

    def delete(self, product_ids: Iterable[str]) -> int:
        """Remove products; returns how many existed. Searches after this never return them."""
        ids = list(dict.fromkeys(str(product_id) for product_id in product_ids))
        deleted = 0
        with self._errors():
            collection = self._open()
            for batch in _batches(ids, self._batch_size()):
                present = collection.get(ids=batch, include=[])["ids"]
                if present:
                    collection.delete(ids=present)
                    deleted += len(present)
        return deleted

    def _write(
        self, collection: Collection, products: Iterable[Product], progress: Progress | None
    ) -> int:
        count = 0
        for batch in _batches(products, self._batch_size()):
            latest = {product.id: product for product in batch}  # a repeated id: last one wins
            chosen = list(latest.values())
            collection.upsert(
                ids=[product.id for product in chosen],
                documents=[embedding_text(product) for product in chosen],
                metadatas=[record_metadata(product) for product in chosen],  # type: ignore[misc]
            )
            count += len(chosen)
            if progress is not None:
                progress(len(chosen))
        return count

    # -- read side --------------------------------------------------------------------------

    def search(self, request: SearchRequest) -> SearchResults:
        """The ``SearchBackend`` entry point: a dense search on the request's text."""
        return self.search_dense(request.text, request.filters, request.size)

    def search_dense(
        self, text: str, filters: SearchFilters | None = None, size: int = 10
    ) -> SearchResults:
        """The whole request embedded once; with no text, products that pass the filters."""
        started = time.perf_counter()
        filters = filters or SearchFilters()
        _check_size(size)
        if not text.strip():
            hits = self._browse(filters, size)
        else:
            hits = self._query([text], filters, size + VERIFY_SLACK)[0][:size]
        return SearchResults(
            hits=ranked(hits),
            backend="dense",
            took_ms=_since(started),
            detail={"text": text},
        )

    def search_concepts(
        self,
        concepts: Sequence[str],
        filters: SearchFilters | None = None,
        size: int = 10,
        k: float = DEFAULT_K,
    ) -> SearchResults:
        """One embedding query per concept, fused with Reciprocal Rank Fusion."""
        started = time.perf_counter()
        filters = filters or SearchFilters()
        wanted, depth = _query_texts(concepts, size, CONCEPT_DEPTH, "search_concepts", "concept")
        per_concept = self._query(wanted, filters, depth)
        lists = [
            SearchResults(hits=ranked(hits), backend=self.name, detail={"concept": concept})
            for concept, hits in zip(wanted, per_concept, strict=True)
        ]
        fused = reciprocal_rank_fusion(lists, k=k, size=size)
        return replace(
            fused,
            backend=self.name,
            took_ms=_since(started),
            detail={"concepts": wanted, "fusion": "rrf", "k": k, "depth": depth},
        )

    def lookup_titles(
        self,
        titles: Sequence[str],
        size: int = 10,
        filters: SearchFilters | None = None,
    ) -> SearchResults:
        """Imagined titles -> real products: embedding candidates re-ranked by title wording.

        Scores are title similarities in 0..1; each title's best match comes before any
        title's second best.
        """
        started = time.perf_counter()
        filters = filters or SearchFilters()
        wanted, depth = _query_texts(titles, size, TITLE_CANDIDATES, "lookup_titles", "title")
        candidates = self._query(wanted, filters, depth)
        per_title = [
            rank_by_title(title, found) for title, found in zip(wanted, candidates, strict=True)
        ]
        matches = {
            title: {"id": found[0][0].id, "title": found[0][0].title, "similarity": found[0][1]}
            for title, found in zip(wanted, per_title, strict=True)
            if found
        }
        return SearchResults(
            hits=ranked(interleave(per_title, size)),
            backend="direct",
            took_ms=_since(started),
            detail={"titles": wanted, "best_matches": matches},
        )

    def get(self, product_id: str) -> Product | None:
        found = self._read(lambda c: c.get(ids=[str(product_id)], include=["metadatas"]))
        metadatas = found["metadatas"] or []
        return product_from_metadata(dict(metadatas[0])) if metadatas else None

    def count(self) -> int:
        return self._read(lambda collection: collection.count())

    def _query(self, texts: list[str], filters: SearchFilters, depth: int) -> list[Candidates]:
        """Per text, (product, cosine similarity) pairs that pass ``filters``, best first."""
        where = chroma_where(filters)
        found = self._read(
            lambda collection: collection.query(
                query_texts=texts,
                n_results=depth,
                where=where,
                include=["metadatas", "distances"],
            )
        )
        rows: list[Candidates] = []
        for metadatas, distances in zip(
            found["metadatas"] or [], found["distances"] or [], strict=True
        ):
            hits: Candidates = []
            for metadata, distance in zip(metadatas, distances, strict=True):
                product = product_from_metadata(dict(metadata))
                if filters.matches(product):
                    hits.append((product, 1.0 - float(distance)))
            rows.append(hits)
        return rows

    def _browse(self, filters: SearchFilters, size: int) -> Candidates:
        """Products that pass the filters, in Chroma's order, with score 0 (nothing to rank by)."""
        where = chroma_where(filters)
        found = self._read(
            lambda c: c.get(where=where, limit=size + VERIFY_SLACK, include=["metadatas"])
        )
        products = [product_from_metadata(dict(m)) for m in found["metadatas"] or []]
        return [(product, 0.0) for product in products if filters.matches(product)][:size]

    # -- plumbing ---------------------------------------------------------------------------

    def _read(self, operation: Callable[[Collection], T]) -> T:
        """Run a read; if the collection was rebuilt (new id) since we opened it, reopen once."""
        with self._errors():
            try:
                return operation(self._open())
            except NotFoundError:
                self._collection = None
                return operation(self._open())

    def _connect(self) -> ClientAPI:
        with self._open_lock:
            if self._client is None:
                if self.server is not None:
                    self._client = http_client(self.server)
                else:
                    assert self.path is not None
                    self._client = persistent_client(self.path)
            return self._client

    def _open(self, *, create: bool = False) -> Collection:
        collection = self._collection
        if collection is not None:
            return collection
        with self._open_lock:
            return self._open_locked(create=create)

    def _open_locked(self, *, create: bool) -> Collection:
        if self._collection is not None:  # another thread opened it while this one waited
            return self._collection
        if not create and self.build_dir is not None:
            check_searchable(self.build_dir, self.dataset)
        if not create and self.path is not None and not self.path.is_dir():
            raise self._missing()
        client = self._connect()
        if create:
            self._collection = client.get_or_create_collection(
                self.collection_name,
                embedding_function=self.embedding_function,  # type: ignore[arg-type]
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"dataset": self.dataset},
            )
        else:
            try:
                self._collection = client.get_collection(
                    self.collection_name,
                    embedding_function=self.embedding_function,  # type: ignore[arg-type]
                )
            except NotFoundError as error:
                raise self._missing() from error
        self.opens += 1
        return self._collection

    def _missing(self) -> IndexMissing:
        return IndexMissing(
            f"no concept index for dataset {self.dataset!r} at {self.location}; "
            f"build it with `shopagent index --dataset {self.dataset}`"
        )

    def _batch_size(self) -> int:
        return min(self.write_batch, self._connect().get_max_batch_size())

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Connection failures as BackendUnavailable; a collection deleted under us as missing."""
        try:
            with server_errors(self.location):
                yield
        except NotFoundError as error:
            self._collection = None
            raise self._missing() from error
        except ValueError as error:
            if "embedding function conflict" not in str(error).lower():
                raise
            raise SearchError(
                f"the Chroma collection {self.collection_name} at {self.location} was built "
                f"with another embedding function; rebuild it with "
                f"`shopagent index --dataset {self.dataset}`"
            ) from error


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _query_texts(
    texts: Sequence[str], size: int, min_depth: int, caller: str, what: str
) -> tuple[list[str], int]:
    """The distinct non-empty texts of a multi-text query and how deep each is searched."""
    _check_size(size)
    wanted = _distinct_texts(texts)
    if not wanted:
        raise BadInput(f"{caller} needs at least one non-empty {what}")
    return wanted, min(MAX_SIZE, max(size, min_depth))


def _distinct_texts(texts: Sequence[str]) -> list[str]:
    """Non-blank texts, stripped, case-insensitively deduplicated (a repeat would count twice)."""
    seen: set[str] = set()
    kept: list[str] = []
    for text in texts:
        cleaned = " ".join(str(text).split())
        if cleaned and cleaned.lower() not in seen:
            seen.add(cleaned.lower())
            kept.append(cleaned)
    return kept


def _check_size(size: int) -> None:
    if not 1 <= size <= MAX_SIZE:
        raise BadInput(f"size must be between 1 and {MAX_SIZE}, got {size}")


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
