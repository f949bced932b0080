"""The embedded lexical backend: tantivy (BM25) behind the same interface as Elasticsearch.

The query mirrors the Elasticsearch backend's ``bool`` query: a ``best_fields``-style
disjunction over boosted fields (``dis_max`` with a tie breaker) that must match, plus
filters that restrict without scoring. User text is analysed into terms and built into
term queries directly, so no query syntax in the text is ever interpreted.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import tantivy

from tools.catalog.product import Product, normalise_attribute_key
from tools.search.backend import IndexMissing, IndexOutdated, Progress, SearchError
from tools.search.measures import MEASURES_FIELD, measure_boost, measure_tokens
from tools.search.request import SearchFilters, SearchRequest, attribute_token
from tools.search.results import SearchResults, ranked
from tools.search.tantivy_schema import (
    ANALYZER,
    TEXT_FIELDS,
    build_analyzer,
    build_schema,
    to_document,
)
from tools.search.title_match import plan_title_match, tantivy_title_clauses
from tools.search.weighted_query import tantivy_weighted_query

#: ``dis_max`` tie breaker, as in Elasticsearch's ``best_fields`` with ``tie_breaker``.
TIE_BREAKER = 0.3
WRITER_HEAP_BYTES = 256_000_000
#: One indexing thread keeps documents in insertion order, so BM25 ties always break the same
#: way: with several threads two builds of the same catalog ranked ties differently and
#: NDCG@10 on Chorus moved between 0.698 and 0.708 from build to build.
WRITER_THREADS = 1


def _read_only(error: ValueError) -> bool:
    """The lock file could not be written because the folder is read-only to us."""
    return any(kind in str(error) for kind in ("ReadOnlyFilesystem", "PermissionDenied"))


def _read_only_snapshot(path: Path) -> Path:
    """A private copy of the index at ``path`` to search (removed with the index object).

    tantivy takes a lock file in the index folder (``.tantivy-meta.lock``, opened for writing)
    even to search, so a read-only home (a shared mount, ``chmod -R a-w``) failed every search
    with ``unexpected ValueError: Failed to acquire Lockfile``. A search only reads: it gets a
    copy in the temporary folder (12 MB for Home Depot's 54,667 products).
    """
    snapshot = Path(tempfile.mkdtemp(prefix="shopagent-index-"))
    shutil.copytree(path, snapshot, dirs_exist_ok=True)
    return snapshot


def _remove_snapshot(folder: Path) -> None:
    """Remove a read-only snapshot, quietly.

    tantivy's own threads may still write in it (its lock and meta files) while the process
    exits, so one ``rmtree`` can meet a file made after it listed the folder ("Directory not
    empty") and ``TemporaryDirectory`` printed that traceback under the command's one error
    line. A few tries remove it; a leftover in the temporary folder is never worth a traceback.
    """
    for _ in range(5):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return
        time.sleep(0.02)


def _unwritable(path: Path, error: ValueError) -> SearchError:
    """One line for an index folder tantivy cannot take its lock file in, for a build (or any
    failure other than a read-only folder)."""
    cause = re.search(r'message: "([^"]+)"', str(error))
    why = cause.group(1) if cause else "cannot write there"
    return SearchError(
        f"cannot open the lexical index at {path} ({why}): tantivy writes a lock file there; "
        "make the folder writable, or point SHOPAGENT_HOME at a writable copy"
    )


class TantivyIndex:
    """A product index in a directory on disk (or in memory when ``path`` is None)."""

    name = "tantivy"

    def __init__(self, path: Path | None, *, create: bool = False, dataset: str = "") -> None:
        self.path = path
        self.dataset = dataset
        self.schema = build_schema()
        self.analyzer = build_analyzer()
        if (
            path is not None
            and not create
            and not (path.is_dir() and tantivy.Index.exists(str(path)))
        ):
            hint = f" --dataset {dataset}" if dataset else ""
            raise IndexMissing(f"no lexical index at {path}; build it with `shopagent index{hint}`")
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
        try:
            self._index = self._open(path, path, create)
        except ValueError as error:
            if path is None or "Failed to acquire Lockfile" not in str(error):
                raise
            if create or not _read_only(error):
                raise _unwritable(path, error) from None
            snapshot = _read_only_snapshot(path)
            weakref.finalize(self, _remove_snapshot, snapshot)
            self._index = self._open(snapshot, path, create)
        self._index.register_tokenizer(ANALYZER, self.analyzer)

    def _open(self, folder: Path | None, path: Path | None, create: bool) -> tantivy.Index:
        """The index in ``folder`` (``path``, or a read-only copy of it); an index an older
        shopagent wrote (before the title kept word positions) is replaced by a build
        (``create``) and otherwise asks for one."""
        try:
            return tantivy.Index(self.schema, path=None if folder is None else str(folder))
        except ValueError as error:
            if path is None or folder is None or "schema does not match" not in str(error):
                raise
            if not create:
                hint = f" --dataset {self.dataset}" if self.dataset else ""
                raise IndexOutdated(
                    f"the lexical index at {path} was built by an older shopagent; rebuild it "
                    f"with `shopagent index{hint}`"
                ) from None
            shutil.rmtree(folder)
            folder.mkdir(parents=True)
            return tantivy.Index(self.schema, path=str(folder))

    # -- write side -------------------------------------------------------------------------

    def index(self, products: Iterable[Product], progress: Progress | None = None) -> int:
        """Replace the whole index with ``products``."""
        writer = self._writer()
        writer.delete_all_documents()
        count = self._write(writer, products, progress, replace=False)
        writer.wait_merging_threads()
        self._index.reload()
        return count

    def upsert(self, products: Iterable[Product]) -> int:
        """Add or replace products in place; searchers see the change as soon as this returns."""
        writer = self._writer()
        count = self._write(writer, products, None, replace=True)
        writer.wait_merging_threads()
        self._index.reload()
        return count

    def delete(self, product_ids: Iterable[str]) -> int:
        """Remove products in place; returns how many of the ids were in the index."""
        ids = [str(product_id) for product_id in product_ids]
        count = sum(1 for product_id in ids if self.get(product_id) is not None)
        writer = self._writer()
        for product_id in ids:
            writer.delete_documents_by_term("id", product_id)
        writer.commit()
        writer.wait_merging_threads()
        self._index.reload()
        return count

    def _writer(self) -> tantivy.IndexWriter:
        try:
            return self._index.writer(heap_size=WRITER_HEAP_BYTES, num_threads=WRITER_THREADS)
        except ValueError as error:  # tantivy reports a held lock as a ValueError
            raise SearchError(f"the lexical index at {self.path} is locked: {error}") from error

    def _write(
        self,
        writer: tantivy.IndexWriter,
        products: Iterable[Product],
        progress: Progress | None,
        *,
        replace: bool,
    ) -> int:
        count = 0
        for product in products:
            if replace:
                writer.delete_documents_by_term("id", product.id)
            writer.add_document(to_document(product))
            count += 1
            if progress is not None and count % 1000 == 0:
                progress(1000)
        writer.commit()
        if progress is not None and count % 1000:
            progress(count % 1000)
        return count

    # -- read side --------------------------------------------------------------------------

    def search(self, request: SearchRequest) -> SearchResults:
        started = time.perf_counter()
        if self._asks_nothing(request):
            return SearchResults(hits=[], backend=self.name, took_ms=0.0, total=0)
        query = self.build_query(request)
        searcher = self._index.searcher()
        found = searcher.search(query, limit=request.size, count=True)
        hits = [(self._product(searcher.doc(address)), score) for score, address in found.hits]
        return SearchResults(
            hits=ranked(hits),
            backend=self.name,
            took_ms=(time.perf_counter() - started) * 1000,
            total=found.count,
        )

    def get(self, product_id: str) -> Product | None:
        searcher = self._index.searcher()
        query = tantivy.Query.term_query(self.schema, "id", str(product_id))
        found = searcher.search(query, limit=1, count=False)
        if not found.hits:
            return None
        return self._product(searcher.doc(found.hits[0][1]))

    def count(self) -> int:
        return self._index.searcher().num_docs

    def iter_products(self) -> Iterator[Product]:
        """Every indexed product (for drift experiments and exports)."""
        searcher = self._index.searcher()
        total = searcher.num_docs
        if total == 0:
            return
        found = searcher.search(tantivy.Query.all_query(), limit=total, count=False)
        for _, address in found.hits:
            yield self._product(searcher.doc(address))

    # -- query building ---------------------------------------------------------------------

    def _asks_nothing(self, request: SearchRequest) -> bool:
        """No searchable words (``""``, ``*``, ``(((``, ``the``) and no filter: nothing to rank
        or restrict by, so no product matched (as Elasticsearch's ``zero_terms_query: none``)."""
        return (
            request.filters.is_empty() and not request.expansions and not self.terms(request.text)
        )

    def terms(self, text: str) -> list[str]:
        """The analysed, de-duplicated terms of ``text`` (what the index stores)."""
        return list(dict.fromkeys(self.analyzer.analyze(text)))

    def build_query(self, request: SearchRequest) -> tantivy.Query:
        text_query = self._expanded_query(request) if request.expansions else None
        if text_query is None:
            text_query = self._text_query(request.text, request.boosts, fuzzy=request.fuzzy)
        measures = self._measure_query(request)
        if measures is not None:
            text_query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Should, text_query), (tantivy.Occur.Should, measures)]
            )
        clauses: list[tuple[tantivy.Occur, tantivy.Query]] = [(tantivy.Occur.Must, text_query)]
        match = plan_title_match(request.text) if request.title_match else None
        if match is not None:
            bonus = tantivy_title_clauses(match, self.schema)
            clauses.extend((tantivy.Occur.Should, clause) for clause in bonus)
        clauses.extend((tantivy.Occur.Must, f) for f in self._filter_queries(request.filters))
        excluded = self._excluded_brands(request.filters)
        if excluded is not None:
            clauses.append((tantivy.Occur.MustNot, excluded))
        if len(clauses) == 1:
            return text_query
        return tantivy.Query.boolean_query(clauses)

    def _text_query(self, text: str, boosts: dict[str, float], *, fuzzy: bool) -> tantivy.Query:
        terms = self.terms(text)
        if not terms:
            return tantivy.Query.all_query()
        per_field: list[tantivy.Query] = []
        for request_field, boost in boosts.items():
            if boost <= 0:
                continue
            field = TEXT_FIELDS[request_field]
            term_queries = [self._term(field, term, fuzzy=fuzzy) for term in terms]
            should = tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in term_queries])
            per_field.append(tantivy.Query.boost_query(should, boost))
        if not per_field:
            return tantivy.Query.all_query()
        return tantivy.Query.disjunction_max_query(per_field, tie_breaker=TIE_BREAKER)

    def _measure_query(self, request: SearchRequest) -> tantivy.Query | None:
        """The request's measures (``tools.search.measures``) as term queries on the products'
        measure tokens, or None when it holds none: either this or the text must match, and
        a product matching both scores both (Elasticsearch's ``bool`` should, ``es_mapping``)."""
        tokens = measure_tokens(request.text)
        boost = measure_boost(request.boosts)
        if not tokens or boost <= 0:
            return None
        terms = [
            (
                tantivy.Occur.Should,
                tantivy.Query.term_query(self.schema, MEASURES_FIELD, token, index_option="freq"),
            )
            for token in tokens
        ]
        return tantivy.Query.boost_query(tantivy.Query.boolean_query(terms), boost)

    def _expanded_query(self, request: SearchRequest) -> tantivy.Query | None:
        """The shopper's words plus weighted added words (``tools.search.weighted_query``)."""
        return tantivy_weighted_query(
            request,
            schema=self.schema,
            analyse=self.terms,
            fields=TEXT_FIELDS,
            tie_breaker=TIE_BREAKER,
            own_term=lambda field, term: self._term(field, term, fuzzy=request.fuzzy),
        )

    def doc_freq(self, field: str, term: str) -> int:
        """How many products hold the analysed ``term`` in the request field ``field``."""
        return int(self._index.searcher().doc_freq(TEXT_FIELDS[field], term))

    def vocabulary(self, field: str, prefix: str) -> list[tuple[str, int]]:
        """Indexed terms of a request field that start with ``prefix``, with document counts."""
        return list(self._index.searcher().terms_with_prefix(TEXT_FIELDS[field], prefix))

    def _term(self, field: str, term: str, *, fuzzy: bool) -> tantivy.Query:
        # Fuzzy edits follow Elasticsearch's AUTO: none under 3 chars, 1 under 6, else 2.
        if fuzzy and len(term) >= 3:
            distance = 1 if len(term) < 6 else 2
            return tantivy.Query.fuzzy_term_query(self.schema, field, term, distance=distance)
        return tantivy.Query.term_query(self.schema, field, term, index_option="freq")

    def _filter_queries(self, filters: SearchFilters) -> list[tantivy.Query]:
        """Filters restrict, never score: each is wrapped in a zero constant score."""
        queries: list[tantivy.Query] = []
        if filters.brands:
            brands = [b.lower() for b in filters.brands]
            queries.append(tantivy.Query.term_set_query(self.schema, "brand_kw", brands))
        if filters.category:
            queries.append(
                tantivy.Query.term_query(self.schema, "category_kw", filters.category.lower())
            )
        if filters.min_price is not None or filters.max_price is not None:
            queries.append(
                tantivy.Query.range_query(
                    self.schema,
                    "price",
                    tantivy.FieldType.Float,
                    lower_bound=float(filters.min_price) if filters.min_price is not None else None,
                    upper_bound=float(filters.max_price) if filters.max_price is not None else None,
                )
            )
        for key, value in filters.attributes.items():
            token = f"{normalise_attribute_key(key)}={attribute_token(value)}"
            queries.append(tantivy.Query.term_query(self.schema, "attr_kv", token))
        return [tantivy.Query.const_score_query(q, 0.0) for q in queries]

    def _excluded_brands(self, filters: SearchFilters) -> tantivy.Query | None:
        """The excluded brands as one term set on the exact brand keyword, for a ``MustNot``
        clause (Elasticsearch's ``must_not`` ``terms``): a product of any of them is out."""
        if not filters.excluded_brands:
            return None
        brands = [b.lower() for b in filters.excluded_brands]
        return tantivy.Query.term_set_query(self.schema, "brand_kw", brands)

    @staticmethod
    def _product(document: tantivy.Document) -> Product:
        stored: dict[str, Any] = orjson.loads(document.get_first("doc"))
        return Product.from_dict(stored)
