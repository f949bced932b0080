"""The server lexical backend: Elasticsearch (BM25) behind the ``ProductIndex`` protocol.

Everything sent is built in ``es_mapping``; this module only talks to the cluster through the
official client and turns its failures into the one-line errors a shopper may see.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TransportError
from elasticsearch import ApiError, Elasticsearch, NotFoundError, UnsupportedProductError
from elasticsearch.helpers import streaming_bulk

from tools.catalog.product import Product
from tools.search.backend import BackendUnavailable, IndexMissing, Progress, SearchError
from tools.search.es_mapping import (
    index_name_for,
    index_template,
    search_body,
    template_name_for,
    to_document,
)
from tools.search.request import SearchRequest
from tools.search.results import SearchResults, ranked
from tools.settings.config import Settings

DEFAULT_TIMEOUT_S = 10.0
BULK_CHUNK = 500
#: Documents a busy cluster rejects with 429 are resent this often (with backoff) before failing.
BULK_RETRIES = 3
#: Bulk failures quoted in an error message; the rest are counted.
QUOTED_FAILURES = 3


class ElasticsearchIndex:
    """A product index ``shopagent-<dataset>`` on an Elasticsearch 8/9 cluster."""

    name = "elasticsearch"

    def __init__(
        self,
        url: str | None = None,
        *,
        dataset: str,
        index_name: str | None = None,
        api_key: str | tuple[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        request_timeout: float = DEFAULT_TIMEOUT_S,
        client: Elasticsearch | None = None,
    ) -> None:
        if client is None and not url:
            raise BackendUnavailable(
                "no Elasticsearch URL configured; set SHOPAGENT_ES_URL (e.g. http://localhost:9200)"
            )
        self.dataset = dataset
        self.index_name = index_name or index_name_for(dataset)
        self.request_timeout = request_timeout
        if client is None:
            client = Elasticsearch(
                url,
                api_key=api_key,
                basic_auth=basic_auth,
                request_timeout=request_timeout,
            )
        self.client = client
        self.url = _redacted(url or _first_node_url(client))

    @classmethod
    def from_settings(cls, settings: Settings, dataset: str) -> ElasticsearchIndex:
        return cls(settings.es_url, dataset=dataset)

    def close(self) -> None:
        self.client.close()

    # -- write side -------------------------------------------------------------------------

    def index(self, products: Iterable[Product], progress: Progress | None = None) -> int:
        """Replace the whole index: (re)install the template, recreate the index, bulk load.

        ``progress`` gets the number of products written since its last call. While this runs,
        searches first find no index (``IndexMissing``), then a partial one.
        """
        with self._errors():
            self.client.indices.put_index_template(
                name=template_name_for(self.index_name), body=index_template(self.index_name)
            )
            self.client.indices.delete(index=self.index_name, ignore_unavailable=True)
            self.client.indices.create(index=self.index_name)
        return self._bulk(_index_actions(products), progress)

    def upsert(self, products: Iterable[Product]) -> int:
        """Add or replace products by id; a search right after this returns sees the change."""
        self._require_index()
        return self._bulk(_index_actions(products), None)

    def delete(self, product_ids: Iterable[str]) -> int:
        """Remove products by id; returns how many existed. Unknown ids are not an error."""
        self._require_index()
        actions = ({"_op_type": "delete", "_id": str(pid)} for pid in product_ids)
        return self._bulk(actions, None)

    def _bulk(self, actions: Iterable[dict[str, Any]], progress: Progress | None) -> int:
        done = 0
        pending_progress = 0
        failures: list[str] = []
        with self._errors():
            results = streaming_bulk(
                self.client,
                actions,
                index=self.index_name,
                chunk_size=BULK_CHUNK,
                raise_on_error=False,
                max_retries=BULK_RETRIES,
            )
            for ok, item in results:
                op_type, outcome = next(iter(item.items()))
                if ok:
                    done += 1
                elif not (op_type == "delete" and outcome.get("result") == "not_found"):
                    failures.append(_bulk_failure(outcome))
                pending_progress += 1
                if progress is not None and pending_progress == BULK_CHUNK:
                    progress(pending_progress)
                    pending_progress = 0
            if progress is not None and pending_progress:
                progress(pending_progress)
            self.client.indices.refresh(index=self.index_name)
        if failures:
            quoted = "; ".join(failures[:QUOTED_FAILURES])
            unquoted = len(failures) - QUOTED_FAILURES
            more = f" (+{unquoted} more)" if unquoted > 0 else ""
            raise SearchError(
                f"{len(failures)} of {done + len(failures)} bulk operations failed on "
                f"{self.index_name}: {quoted}{more}"
            )
        return done

    def _require_index(self) -> None:
        with self._errors():
            exists = bool(self.client.indices.exists(index=self.index_name))
        if not exists:
            raise self._index_missing()

    # -- read side --------------------------------------------------------------------------

    def search(self, request: SearchRequest) -> SearchResults:
        started = time.perf_counter()
        with self._errors():
            response = self.client.search(index=self.index_name, body=search_body(request))
        body = response.body
        hits = [(self._product(hit), float(hit.get("_score") or 0.0)) for hit in _hits(body)]
        total = body["hits"].get("total") or {}
        return SearchResults(
            hits=ranked(hits),
            backend=self.name,
            took_ms=(time.perf_counter() - started) * 1000,
            total=total.get("value"),
            detail={
                "index": self.index_name,
                "total_relation": total.get("relation", "eq"),
                "server_took_ms": body.get("took"),
            },
        )

    def get(self, product_id: str) -> Product | None:
        try:
            with self._errors():
                response = self.client.get(index=self.index_name, id=product_id, source=["doc"])
        except _DocumentNotFound:
            return None
        return self._product(response.body)

    def count(self) -> int:
        with self._errors():
            return int(self.client.count(index=self.index_name)["count"])

    def _product(self, hit: dict[str, Any]) -> Product:
        stored = (hit.get("_source") or {}).get("doc")
        if not isinstance(stored, dict):
            raise SearchError(
                f"document {hit.get('_id')} in {self.index_name} has no stored product; "
                f"rebuild it with `{self._rebuild_command()}`"
            )
        return Product.from_dict(stored)

    # -- errors -----------------------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Client and transport failures as one-line ``SearchError``s naming the cluster."""
        try:
            yield
        except NotFoundError as error:
            if _error_type(error) == "index_not_found_exception":
                raise self._index_missing() from error
            if isinstance(error.body, dict) and error.body.get("found") is False:
                raise _DocumentNotFound() from error
            raise SearchError(f"Elasticsearch at {self.url}: {_describe(error)}") from error
        except UnsupportedProductError as error:
            raise BackendUnavailable(
                f"the server at {self.url} is not Elasticsearch; check SHOPAGENT_ES_URL"
            ) from error
        except ApiError as error:
            raise SearchError(f"Elasticsearch at {self.url}: {_describe(error)}") from error
        except ConnectionTimeout as error:
            raise BackendUnavailable(
                f"Elasticsearch at {self.url} did not answer within {self.request_timeout:g} s"
            ) from error
        except TransportConnectionError as error:
            raise BackendUnavailable(
                f"cannot reach Elasticsearch at {self.url}; start it (docker compose up -d "
                "elasticsearch) or set SHOPAGENT_ES_URL"
            ) from error
        except TransportError as error:
            raise SearchError(f"Elasticsearch at {self.url}: {error.message}") from error

    def _rebuild_command(self) -> str:
        return f"shopagent index --dataset {self.dataset} --backend elasticsearch"

    def _index_missing(self) -> IndexMissing:
        return IndexMissing(
            f"no Elasticsearch index {self.index_name} at {self.url}; "
            f"build it with `{self._rebuild_command()}`"
        )


class _DocumentNotFound(Exception):
    """``GET`` found the index but not the document (a normal ``None`` for ``get``)."""


def _index_actions(products: Iterable[Product]) -> Iterator[dict[str, Any]]:
    for product in products:
        yield {"_op_type": "index", "_id": product.id, "_source": to_document(product)}


def _hits(body: dict[str, Any]) -> list[dict[str, Any]]:
    return list(body.get("hits", {}).get("hits") or [])


def _error_type(error: ApiError) -> str | None:
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("type")
    return None


def _describe(error: ApiError) -> str:
    """``<status> <type>: <reason> (<root cause>)`` from an Elasticsearch error body, one line."""
    body = error.body
    detail = body.get("error") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        text = _type_and_reason(detail)
        causes = detail.get("root_cause") or []
        if causes and isinstance(causes[0], dict) and _type_and_reason(causes[0]) != text:
            text += f" ({_type_and_reason(causes[0])})"
    else:
        text = str(detail or body or error.message)
    return f"{error.meta.status} {' '.join(text.split())}"


def _type_and_reason(detail: dict[str, Any]) -> str:
    return f"{detail.get('type', 'error')}: {detail.get('reason') or ''}".rstrip(": ")


def _bulk_failure(outcome: dict[str, Any]) -> str:
    error = outcome.get("error")
    if isinstance(error, dict):
        reason = _type_and_reason(error)
    else:
        reason = str(error or f"status {outcome.get('status')}")
    return f"{outcome.get('_id')}: {' '.join(reason.split())}"


def _first_node_url(client: Elasticsearch) -> str:
    nodes = client.transport.node_pool.all()
    return nodes[0].base_url if nodes else "Elasticsearch"


def _redacted(url: str) -> str:
    """The URL without credentials, fit for an error message."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))
