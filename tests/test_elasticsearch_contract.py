"""The Elasticsearch backend against the real client, with a recording stub node, no server.

The stub sits where urllib3 would (``node_class=``): every request goes through the official
client, its serializers, product check and error mapping, so the bodies pinned here are the
bytes a cluster would receive, and the replies are realistic ES 9 responses from
tests/fixtures/es.
"""

from __future__ import annotations

import itertools
import json
import math
import socket
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from elastic_transport import ApiResponseMeta, BaseNode, ConnectionTimeout, HttpHeaders
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport._node import NodeApiResponse
from elastic_transport.client_utils import DEFAULT, DefaultType
from elasticsearch import Elasticsearch

from tests.catalog_samples import sample_products, sample_toolbox
from tests.conftest import FIXTURES
from tests.index_contract import assert_signatures_match_the_protocol
from tools.catalog.chorus import iter_products
from tools.catalog.import_report import ImportReport
from tools.catalog.product import Product
from tools.search.backend import BackendUnavailable, IndexMissing, SearchError
from tools.search.elasticsearch_backend import ElasticsearchIndex
from tools.search.es_mapping import (
    exclusion_clauses,
    filter_clauses,
    index_name_for,
    search_body,
    to_document,
)
from tools.search.price_order import PRICE_ORDER_DEPTH
from tools.search.request import SearchFilters, SearchRequest
from tools.search.tantivy_schema import to_document as tantivy_document
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings

URL = "http://es.test:9200"
REBUILD = "shopagent index --dataset chorus --backend elasticsearch"
ES_HEADERS = {
    "content-type": "application/vnd.elasticsearch+json;compatible-with=9",
    "x-elastic-product": "Elasticsearch",
}

MOUSE = Product(
    id="7201185",
    title="Logitech M705 Marathon mouse Wireless Laser 1000 DPI",
    description=(
        "Wireless mouse with up to 3 years of battery life, hyper-fast scrolling "
        "and a Unifying receiver"
    ),
    brand="Logitech",
    category_path=("Computers", "Mice"),
    price=Decimal("49.95"),
    attributes={
        "max_dpi": 1000.0,
        "connectivity_technology": "Wireless",
        "buttons_quantity": 7.0,
        "scroll_wheel": True,
    },
    image_url="http://images.icecat.biz/img/gallery/7201185_4417.jpg",
    updated_at=datetime(2010, 8, 24, tzinfo=UTC),
)
HEADPHONES = Product(
    id="1655431",
    title="Sony MDR-ZX110 headphones Head-band Black",
    description="Folding design, 30 mm dome drivers",
    brand="Sony",
    category_path=("Audio", "Headphones"),
    attributes={"wireless": False, "impedance": 24.0},
)


# -- the stub node -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    params: dict[str, list[str]]
    body: bytes | None

    def json(self) -> Any:
        assert self.body is not None, f"{self.method} {self.path} sent no body"
        return json.loads(self.body)

    def ndjson(self) -> list[Any]:
        assert self.body is not None, f"{self.method} {self.path} sent no body"
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


class StubCluster:
    """Scripted replies, served in order, and every request the client sent."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._replies: deque[tuple[int, bytes, dict[str, str]] | Exception] = deque()

    def reply(
        self, status: int, fixture: str | None = None, headers: dict[str, str] | None = None
    ) -> StubCluster:
        body = (FIXTURES / "es" / fixture).read_bytes() if fixture else b""
        self._replies.append((status, body, ES_HEADERS if headers is None else headers))
        return self

    def reply_json(self, status: int, data: Any) -> StubCluster:
        self._replies.append((status, json.dumps(data).encode(), ES_HEADERS))
        return self

    def fail(self, error: Exception) -> StubCluster:
        self._replies.append(error)
        return self

    def answer(self, method: str, target: str, body: bytes | None) -> tuple[int, bytes, dict]:
        parts = urlsplit(target)
        self.requests.append(Recorded(method, parts.path, parse_qs(parts.query), body))
        assert self._replies, f"unscripted request {method} {target}"
        reply = self._replies.popleft()
        if isinstance(reply, Exception):
            raise reply
        return reply

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]

    def assert_all_served(self) -> None:
        assert not self._replies, f"{len(self._replies)} scripted replies were never requested"


class StubNode(BaseNode):
    """Stands in for ``Urllib3HttpNode``: same signature, no socket."""

    _CLIENT_META_HTTP_CLIENT = ("ur", "0.0")
    cluster: ClassVar[StubCluster]

    def perform_request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        request_timeout: DefaultType | float | None = DEFAULT,
    ) -> NodeApiResponse:
        status, data, reply_headers = self.cluster.answer(method, target, body)
        meta = ApiResponseMeta(
            status=status,
            http_version="1.1",
            headers=HttpHeaders(reply_headers),
            duration=0.002,
            node=self.config,
        )
        return NodeApiResponse(meta, data)


@pytest.fixture()
def cluster() -> StubCluster:
    return StubCluster()


@pytest.fixture()
def backend(cluster: StubCluster) -> ElasticsearchIndex:
    node_class = type("BoundStubNode", (StubNode,), {"cluster": cluster})
    client = Elasticsearch(URL, node_class=node_class, max_retries=0)
    return ElasticsearchIndex(dataset="chorus", client=client)


def walk(value: Any) -> list[tuple[tuple[Any, ...], Any]]:
    """Every (path, leaf-or-key) in a JSON value, keys included, for "appears nowhere" checks."""
    found: list[tuple[tuple[Any, ...], Any]] = []

    def visit(node: Any, path: tuple[Any, ...]) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                found.append(((*path, key), key))
                visit(child, (*path, key))
        elif isinstance(node, list):
            for i, child in enumerate(node):
                visit(child, (*path, i))
        else:
            found.append((path, node))

    visit(value, ())
    return found


DEFAULT_FIELDS = ["title^3", "brand^2", "category^1.5", "description^1", "attributes_text^0.5"]
MOUSE_DOCUMENT = {
    "id": "7201185",
    "title": "Logitech M705 Marathon mouse Wireless Laser 1000 DPI",
    "description": (
        "Wireless mouse with up to 3 years of battery life, hyper-fast scrolling "
        "and a Unifying receiver"
    ),
    "brand": "Logitech",
    "category": "Computers > Mice",
    "category_path": ["Computers", "Mice"],
    "price": "49.95",
    "attributes_text": (
        "max dpi 1000 ; connectivity technology Wireless ; buttons quantity 7 ; scroll wheel"
    ),
    "measures": "",
    "attributes_kv": [
        "max_dpi=1000",
        "connectivity_technology=wireless",
        "buttons_quantity=7",
        "scroll_wheel=yes",
    ],
    "image_url": "http://images.icecat.biz/img/gallery/7201185_4417.jpg",
    "updated_at": "2010-08-24T00:00:00+00:00",
    "doc": {
        "id": "7201185",
        "title": "Logitech M705 Marathon mouse Wireless Laser 1000 DPI",
        "description": (
            "Wireless mouse with up to 3 years of battery life, hyper-fast scrolling "
            "and a Unifying receiver"
        ),
        "brand": "Logitech",
        "category_path": ["Computers", "Mice"],
        "price": "49.95",
        "attributes": {
            "max_dpi": 1000.0,
            "connectivity_technology": "Wireless",
            "buttons_quantity": 7.0,
            "scroll_wheel": True,
        },
        "image_url": "http://images.icecat.biz/img/gallery/7201185_4417.jpg",
        "updated_at": "2010-08-24T00:00:00+00:00",
    },
}
HEADPHONES_DOCUMENT = {
    "id": "1655431",
    "title": "Sony MDR-ZX110 headphones Head-band Black",
    "description": "Folding design, 30 mm dome drivers",
    "brand": "Sony",
    "category": "Audio > Headphones",
    "category_path": ["Audio", "Headphones"],
    "price": None,
    "attributes_text": "impedance 24",
    "measures": "",
    "attributes_kv": ["wireless=no", "impedance=24"],
    "image_url": "",
    "updated_at": None,
    "doc": {
        "id": "1655431",
        "title": "Sony MDR-ZX110 headphones Head-band Black",
        "description": "Folding design, 30 mm dome drivers",
        "brand": "Sony",
        "category_path": ["Audio", "Headphones"],
        "price": None,
        "attributes": {"wireless": False, "impedance": 24.0},
        "image_url": "",
        "updated_at": None,
    },
}
ENGLISH_TEXT = {"type": "text", "analyzer": "shop_english"}
EXPECTED_TEMPLATE = {
    "index_patterns": ["shopagent-chorus"],
    "priority": 200,
    "template": {
        "settings": {
            "number_of_shards": 1,
            "auto_expand_replicas": "0-1",
            "analysis": {
                "filter": {
                    "shop_english_possessive": {
                        "type": "stemmer",
                        "language": "possessive_english",
                    },
                    "shop_english_stop": {"type": "stop", "stopwords": "_english_"},
                    "shop_english_stemmer": {"type": "stemmer", "language": "porter2"},
                },
                "analyzer": {
                    "shop_english": {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": [
                            "shop_english_possessive",
                            "lowercase",
                            "asciifolding",
                            "shop_english_stop",
                            "shop_english_stemmer",
                        ],
                    }
                },
                "normalizer": {"shop_lowercase": {"type": "custom", "filter": ["lowercase"]}},
            },
        },
        "mappings": {
            "dynamic": "strict",
            "_meta": {"schema_version": 2},
            "properties": {
                "id": {"type": "keyword"},
                "title": {
                    **ENGLISH_TEXT,
                    "fields": {"raw": {"type": "keyword", "ignore_above": 256}},
                },
                "brand": {
                    **ENGLISH_TEXT,
                    "fields": {
                        "keyword": {
                            "type": "keyword",
                            "normalizer": "shop_lowercase",
                            "ignore_above": 256,
                        }
                    },
                },
                "category": ENGLISH_TEXT,
                "category_path": {
                    "type": "keyword",
                    "normalizer": "shop_lowercase",
                    "ignore_above": 256,
                },
                "description": ENGLISH_TEXT,
                "attributes_text": ENGLISH_TEXT,
                "measures": {"type": "text", "analyzer": "whitespace"},
                "attributes_kv": {"type": "keyword", "ignore_above": 512},
                "price": {"type": "scaled_float", "scaling_factor": 100},
                "image_url": {"type": "keyword", "index": False, "doc_values": False},
                "updated_at": {"type": "date"},
                "doc": {"type": "object", "enabled": False},
            },
        },
    },
    "_meta": {"managed_by": "shopagent", "schema_version": 2},
}


# -- query bodies ------------------------------------------------------------------------------


def test_stub_backend_keeps_the_product_index_protocol(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    """Every protocol method, through the stub, in the order a build and a drift use them."""
    assert_signatures_match_the_protocol(ElasticsearchIndex)
    assert (backend.name, backend.index_name) == ("elasticsearch", "shopagent-chorus")
    (
        cluster.reply(200, "acknowledged.json")
        .reply(200, "acknowledged.json")
        .reply(200, "index_created.json")
        .reply(200, "bulk_created.json")
        .reply(200, "refresh.json")
        .reply(200, "search_two_hits.json")
        .reply(200, "get_found.json")
        .reply(200)
        .reply(200, "bulk_updated.json")
        .reply(200, "refresh.json")
        .reply(200)
        .reply(200, "bulk_deleted.json")
        .reply(200, "refresh.json")
        .reply(404, "get_missing_document.json")
    )

    assert backend.index([MOUSE, HEADPHONES]) == 2
    results = backend.search(SearchRequest("wireless mouse"))
    assert results.hits[0].product == MOUSE and results.hits[0].rank == 1
    assert backend.get(MOUSE.id) == MOUSE
    assert backend.upsert([replace(MOUSE, price=Decimal("39.99"))]) == 1
    assert backend.delete([MOUSE.id]) == 1
    assert backend.get(MOUSE.id) is None

    cluster.assert_all_served()
    assert {r.path.split("/")[1] for r in cluster.requests if not r.path.startswith("/_")} == {
        "shopagent-chorus"
    }


def test_stub_plain_text_query_body_and_hits(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    cluster.reply(200, "search_two_hits.json")

    results = backend.search(SearchRequest("wireless mouse"))

    (request,) = cluster.requests
    assert (request.method, request.path, request.params) == (
        "POST",
        "/shopagent-chorus/_search",
        {},
    )
    assert request.json() == {
        "query": {
            "bool": {
                "must": [
                    {
                        "multi_match": {
                            "query": "wireless mouse",
                            "type": "best_fields",
                            "fields": DEFAULT_FIELDS,
                            "operator": "or",
                            "tie_breaker": 0.3,
                            "zero_terms_query": "none",
                        }
                    }
                ]
            }
        },
        "size": 10,
        "_source": ["doc"],
        "track_total_hits": True,
    }
    assert results.backend == "elasticsearch"
    assert results.ids == ["7201185", "1655431"]
    assert [hit.rank for hit in results.hits] == [1, 2]
    assert [hit.score for hit in results.hits] == [11.802345, 4.1503115]
    assert results.total == 2
    assert results.detail["total_relation"] == "eq"
    assert results.detail["server_took_ms"] == 3
    # The stored doc rebuilds the catalog product exactly, Decimal price included.
    assert results.hits[0].product == MOUSE
    assert results.hits[0].product.price == Decimal("49.95")
    assert results.hits[1].product == HEADPHONES


def test_stub_every_filter_kind_and_custom_boosts(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    cluster.reply(200, "search_two_hits.json")
    filters = SearchFilters(
        brands=("Logitech", "LOGITECH", "Razer"),
        category="Mice",
        min_price=Decimal("10"),
        max_price=Decimal("49.95"),
        attributes={"Max DPI": "1000", "Scroll-Wheel": "True"},
    )
    request = SearchRequest(
        "laser mouse",
        filters=filters,
        boosts={"title": 2.0, "brand": 0.0, "description": 1.25},
        size=25,
    )

    backend.search(request)

    assert cluster.requests[0].json() == {
        "query": {
            "bool": {
                "must": [
                    {
                        "multi_match": {
                            "query": "laser mouse",
                            "type": "best_fields",
                            "fields": ["title^2", "description^1.25"],
                            "operator": "or",
                            "tie_breaker": 0.3,
                            "zero_terms_query": "all",
                        }
                    }
                ],
                "filter": [
                    {"terms": {"brand.keyword": ["logitech", "razer"]}},
                    {"term": {"category_path": "mice"}},
                    {"range": {"price": {"gte": "10", "lte": "49.95"}}},
                    {"term": {"attributes_kv": "max_dpi=1000"}},
                    {"term": {"attributes_kv": "scroll_wheel=yes"}},
                ],
            }
        },
        "size": 25,
        "_source": ["doc"],
        "track_total_hits": True,
    }


def test_stub_one_sided_price_range(backend: ElasticsearchIndex, cluster: StubCluster) -> None:
    cluster.reply(200, "search_no_hits.json")

    backend.search(SearchRequest("toner", filters=SearchFilters(max_price=Decimal("0.07"))))

    assert cluster.requests[0].json()["query"]["bool"]["filter"] == [
        {"range": {"price": {"lte": "0.07"}}}
    ]


def test_stub_excluded_brands_are_one_must_not_terms_on_the_brand_keyword(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    cluster.reply(200, "search_no_hits.json")
    filters = SearchFilters(brands=("Logitech", "Razer"), excluded_brands=("HP", "hp", "Dell"))

    backend.search(SearchRequest("mouse", filters=filters))

    query = cluster.requests[0].json()["query"]["bool"]
    assert query["filter"] == [{"terms": {"brand.keyword": ["logitech", "razer"]}}]
    assert query["must_not"] == [{"terms": {"brand.keyword": ["hp", "dell"]}}]
    assert query["must"][0]["multi_match"]["zero_terms_query"] == "all"  # a filter: may browse


def test_stub_no_exclusion_sends_no_must_not(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    cluster.reply(200, "search_no_hits.json")
    backend.search(SearchRequest("mouse", sort="price_asc"))  # a backend never reads sort
    body = cluster.requests[0].json()
    assert "must_not" not in body["query"]["bool"] and "sort" not in body


def _reply_with(ranking: list[tuple[Product, float]]) -> dict[str, Any]:
    """An Elasticsearch ``_search`` reply holding ``ranking`` as its hits."""
    hits = [
        {
            "_index": "shopagent-chorus",
            "_id": p.id,
            "_score": score,
            "_source": {"doc": json.loads(json.dumps(p.to_dict()))},
        }
        for p, score in ranking
    ]
    return {
        "took": 1,
        "timed_out": False,
        "hits": {"total": {"value": len(hits), "relation": "eq"}, "hits": hits},
    }


@pytest.mark.parametrize("sort", ["price_asc", "price_desc"])
def test_stub_price_order_through_the_toolbox_is_the_tantivy_order(
    backend: ElasticsearchIndex, cluster: StubCluster, tmp_path: Path, sort: str
) -> None:
    """The same relevance ranking from either backend gives the same price order: the order
    is applied above both (``SearchToolbox.run``), to a pool fetched deep enough."""
    tantivy_box = sample_toolbox(tmp_path / "home")
    asked = SearchRequest("gaming mouse", size=2, title_match=True, sort=sort)
    deep = tantivy_box.lexical.search(replace(asked, size=PRICE_ORDER_DEPTH, sort="relevance"))
    cluster.reply_json(200, _reply_with([(h.product, h.score) for h in deep.hits]))
    es_box = SearchToolbox(Settings(home=tmp_path / "es-home"), "chorus")
    es_box.__dict__["lexical"] = backend

    from_es = es_box.run("lexical", asked)

    assert cluster.requests[0].json()["size"] == PRICE_ORDER_DEPTH
    assert from_es.ids == tantivy_box.run("lexical", asked).ids
    assert "k1" in deep.ids and "k1" not in from_es.ids  # the one-word match stays out
    shown = [hit.product.price for hit in from_es.hits]
    assert shown == sorted(shown, reverse=sort == "price_desc") and len(shown) == 2


def test_stub_fuzzy_adds_auto_fuzziness(backend: ElasticsearchIndex, cluster: StubCluster) -> None:
    cluster.reply(200, "search_two_hits.json")

    backend.search(SearchRequest("logitek mouse", fuzzy=True))

    assert cluster.requests[0].json()["query"] == {
        "bool": {
            "must": [
                {
                    "multi_match": {
                        "query": "logitek mouse",
                        "type": "best_fields",
                        "fields": DEFAULT_FIELDS,
                        "operator": "or",
                        "tie_breaker": 0.3,
                        "zero_terms_query": "none",
                        "fuzziness": "AUTO",
                    }
                }
            ]
        }
    }


def test_stub_measures_are_a_should_clause_on_the_measure_tokens(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    """``1tb`` is also searched as ``1000gb`` in ``measures`` (title boost): the text or the
    measure must match, as the tantivy backend's query (``tools.search.measures``)."""
    cluster.reply(200, "search_two_hits.json")

    backend.search(SearchRequest('1tb drive for a 50" tv'))

    assert cluster.requests[0].json()["query"] == {
        "bool": {
            "must": [
                {
                    "bool": {
                        "should": [
                            {
                                "multi_match": {
                                    "query": '1tb drive for a 50" tv',
                                    "type": "best_fields",
                                    "fields": DEFAULT_FIELDS,
                                    "operator": "or",
                                    "tie_breaker": 0.3,
                                    "zero_terms_query": "none",
                                }
                            },
                            {"match": {"measures": {"query": "1000gb 50in", "boost": 1.5}}},
                        ],
                        "minimum_should_match": 1,
                    }
                }
            ]
        }
    }


def test_measure_tokens_meet_the_indexed_tokens_and_tantivys() -> None:
    """What the query side sends in ``measures`` is what both backends index for the product
    (Elasticsearch's ``whitespace`` analyzer splits as tantivy's ``whitespace`` tokenizer)."""
    products = [
        Product.from_dict(json.loads(line))
        for line in (FIXTURES / "measures" / "chorus.jsonl").read_text().splitlines()
    ]
    indexed = {p.id: to_document(p)["measures"].split() for p in products}
    for product in products:
        stored = tantivy_document(product).to_dict().get("measures", [""])
        assert " ".join(stored).split() == indexed[product.id]

    def found(text: str) -> set[str]:
        (clause,) = json.loads(json.dumps(search_body(SearchRequest(text))))["query"]["bool"][
            "must"
        ][0]["bool"]["should"][1:]
        wanted = set(clause["match"]["measures"]["query"].split())
        return {pid for pid, tokens in indexed.items() if wanted & set(tokens)}

    assert found("1tb") == found("1 TB") == found("1000gb") == {"1683224", "79129887"}
    assert found("50 inch") == found('50"') == found("50-inch") == {"4699665"}


def test_stub_empty_text_matches_all_but_filters_still_apply(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    cluster.reply(200, "search_no_hits.json")

    results = backend.search(
        SearchRequest("   ", filters=SearchFilters(category="Headphones"), size=5)
    )

    assert cluster.requests[0].json() == {
        "query": {
            "bool": {
                "must": [{"match_all": {}}],
                "filter": [{"term": {"category_path": "headphones"}}],
            }
        },
        "size": 5,
        "_source": ["doc"],
        "track_total_hits": True,
    }
    assert results.hits == []
    assert results.total == 0


def test_stub_query_syntax_in_user_text_stays_plain_text(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    cluster.reply(200, "search_no_hits.json")
    malicious = "title:foo OR *:* AND price:[0 TO 1]"

    backend.search(SearchRequest(malicious, fuzzy=True))

    body = cluster.requests[0].json()
    leaves = walk(body)
    keys = {key for path, key in leaves if path and path[-1] == key}
    assert not keys & {"query_string", "simple_query_string", "script", "regexp", "wildcard"}
    where = [path for path, value in leaves if value == malicious]
    assert where == [("query", "bool", "must", 0, "multi_match", "query")]


# -- index template and bulk writes ------------------------------------------------------------


def test_stub_index_installs_template_recreates_index_and_bulk_loads(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    (
        cluster.reply(200, "acknowledged.json")
        .reply(200, "acknowledged.json")
        .reply(200, "index_created.json")
        .reply(200, "bulk_created.json")
        .reply(200, "refresh.json")
    )
    progress: list[int] = []

    written = backend.index(iter([MOUSE, HEADPHONES]), progress=progress.append)

    assert written == 2
    assert progress == [2]
    cluster.assert_all_served()
    assert cluster.calls() == [
        ("PUT", "/_index_template/shopagent-chorus-template"),
        ("DELETE", "/shopagent-chorus"),
        ("PUT", "/shopagent-chorus"),
        ("PUT", "/shopagent-chorus/_bulk"),
        ("POST", "/shopagent-chorus/_refresh"),
    ]
    template, delete, create, bulk, _ = cluster.requests
    assert template.json() == EXPECTED_TEMPLATE
    assert delete.params == {"ignore_unavailable": ["true"]}
    assert create.body is None  # the template supplies settings and mappings
    assert bulk.ndjson() == [
        {"index": {"_id": "7201185"}},
        MOUSE_DOCUMENT,
        {"index": {"_id": "1655431"}},
        HEADPHONES_DOCUMENT,
    ]


def test_stub_upsert_reindexes_by_id_and_refreshes(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    cluster.reply(200).reply(200, "bulk_updated.json").reply(200, "refresh.json")
    cheaper = replace(MOUSE, price=Decimal("39.99"))

    assert backend.upsert([cheaper]) == 1

    assert cluster.calls() == [
        ("HEAD", "/shopagent-chorus"),
        ("PUT", "/shopagent-chorus/_bulk"),
        ("POST", "/shopagent-chorus/_refresh"),
    ]
    expected = {**MOUSE_DOCUMENT, "price": "39.99"}
    expected["doc"] = {**MOUSE_DOCUMENT["doc"], "price": "39.99"}
    assert cluster.requests[1].ndjson() == [{"index": {"_id": "7201185"}}, expected]


def test_stub_delete_counts_existing_ids_and_refreshes_before_returning(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    cluster.reply(200).reply(200, "bulk_deleted.json").reply(200, "refresh.json")

    assert backend.delete(["7201185", "0000000"]) == 1

    assert cluster.calls()[-1] == ("POST", "/shopagent-chorus/_refresh")
    assert cluster.requests[1].ndjson() == [
        {"delete": {"_id": "7201185"}},
        {"delete": {"_id": "0000000"}},
    ]


@pytest.mark.parametrize("write", ["upsert", "delete"])
def test_stub_writes_to_a_missing_index_name_the_build_command(
    backend: ElasticsearchIndex, cluster: StubCluster, write: str
) -> None:
    cluster.reply(404)
    argument = [MOUSE] if write == "upsert" else ["7201185"]

    with pytest.raises(IndexMissing, match=REBUILD):
        getattr(backend, write)(argument)

    assert cluster.calls() == [("HEAD", "/shopagent-chorus")]


def test_stub_rejected_documents_fail_with_one_line_naming_them(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    cluster.reply(200).reply(200, "bulk_rejected.json").reply(200, "refresh.json")

    with pytest.raises(SearchError) as raised:
        backend.upsert([MOUSE, HEADPHONES])

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("1 of 2 bulk operations failed on shopagent-chorus: 1655431: ")
    assert "document_parsing_exception" in message
    # What was accepted is still made visible.
    assert cluster.calls()[-1] == ("POST", "/shopagent-chorus/_refresh")


# -- read side ---------------------------------------------------------------------------------


def test_stub_get_rebuilds_the_product_or_returns_none(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    cluster.reply(200, "get_found.json").reply(404, "get_missing_document.json")

    assert backend.get("7201185") == MOUSE
    assert backend.get("0000000") is None
    assert cluster.calls() == [
        ("GET", "/shopagent-chorus/_doc/7201185"),
        ("GET", "/shopagent-chorus/_doc/0000000"),
    ]
    assert cluster.requests[0].params == {"_source": ["doc"]}


def test_stub_count_reads_the_clusters_answer_for_the_whole_index(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    cluster.reply(200, "count.json").reply_json(200, {"count": 0, "_shards": {"total": 1}})

    first, second = backend.count(), backend.count()

    assert (first, second) == (19406, 0)  # read from each reply, never remembered
    assert type(first) is int
    assert cluster.calls() == [("POST", "/shopagent-chorus/_count")] * 2
    assert cluster.requests[0].body is None  # no query: every document counts
    assert cluster.requests[0].params == {}


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.search(SearchRequest("mouse")),
        lambda b: b.get("7201185"),
        lambda b: b.count(),
    ],
    ids=["search", "get", "count"],
)
def test_stub_missing_index_names_the_build_command(
    backend: ElasticsearchIndex, cluster: StubCluster, call: Any
) -> None:
    cluster.reply(404, "index_not_found.json")

    with pytest.raises(IndexMissing) as raised:
        call(backend)

    assert str(raised.value) == (
        f"no Elasticsearch index shopagent-chorus at {URL}; build it with `{REBUILD}`"
    )


def test_stub_server_error_is_one_line_with_the_root_cause(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    cluster.reply(400, "search_phase_error.json")

    with pytest.raises(SearchError) as raised:
        backend.search(SearchRequest("mouse"))

    assert not isinstance(raised.value, BackendUnavailable | IndexMissing)
    assert str(raised.value) == (
        f"Elasticsearch at {URL}: 400 search_phase_execution_exception: all shards failed "
        "(query_shard_exception: failed to create query: Can only use fuzzy queries on keyword "
        "and text fields - not on [price] which is of type [scaled_float])"
    )


# -- unreachable or wrong servers --------------------------------------------------------------


def test_stub_connection_failure_is_backend_unavailable(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    cluster.fail(
        TransportConnectionError(
            "Connection error caused by: NewConnectionError(<HTTPConnection(host='es.test', "
            "port=9200)>: Failed to establish a new connection: [Errno 111] Connection refused)"
        )
    )

    with pytest.raises(BackendUnavailable) as raised:
        backend.search(SearchRequest("mouse"))

    assert str(raised.value) == (
        f"cannot reach Elasticsearch at {URL}; start it (docker compose up -d elasticsearch) "
        "or set SHOPAGENT_ES_URL"
    )


def test_stub_timeout_is_backend_unavailable(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    cluster.fail(ConnectionTimeout("Connection timed out during request"))

    with pytest.raises(BackendUnavailable, match=r"^Elasticsearch at http://es.test:9200 did not"):
        backend.count()


def test_stub_a_server_that_is_not_elasticsearch_is_refused(
    backend: ElasticsearchIndex, cluster: StubCluster
) -> None:
    cluster.reply(200, "count.json", headers={"content-type": "application/json"})

    with pytest.raises(BackendUnavailable, match="is not Elasticsearch"):
        backend.count()


def _closed_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_real_client_on_a_closed_port_reports_the_url_without_credentials() -> None:
    port = _closed_loopback_port()
    backend = ElasticsearchIndex(
        f"http://elastic:s3cret@127.0.0.1:{port}", dataset="chorus", request_timeout=2
    )

    with pytest.raises(BackendUnavailable) as raised:
        backend.search(SearchRequest("mouse"))

    message = str(raised.value)
    assert f"http://127.0.0.1:{port}" in message
    assert "s3cret" not in message
    assert "\n" not in message


def test_no_url_configured() -> None:
    with pytest.raises(BackendUnavailable, match="SHOPAGENT_ES_URL"):
        ElasticsearchIndex.from_settings(Settings(es_url=None), "chorus")


def test_index_names_follow_the_dataset() -> None:
    assert index_name_for("Chorus") == "shopagent-chorus"
    assert index_name_for("homedepot") == "shopagent-homedepot"
    for bad in ("", "  ", "my data", "a/b", "x*"):
        with pytest.raises(ValueError, match="cannot name an Elasticsearch index"):
            index_name_for(bad)


# -- index side and query side agree -----------------------------------------------------------

#: keyword field -> (document field, normaliser lower-cases, ignore_above), as in the template.
KEYWORD_FIELDS = {
    "brand.keyword": ("brand", True, 256),
    "category_path": ("category_path", True, 256),
    "attributes_kv": ("attributes_kv", False, 512),
}


def _indexed_terms(document: dict[str, Any], field: str) -> set[str]:
    source, lowercase, ignore_above = KEYWORD_FIELDS[field]
    values = document[source] if isinstance(document[source], list) else [document[source]]
    return {v.lower() if lowercase else v for v in values if len(v) <= ignore_above}


def _selects(clause: dict[str, Any], document: dict[str, Any]) -> bool:
    """How Elasticsearch evaluates our filter clauses on a document (normalisers, cents)."""
    ((kind, spec),) = clause.items()
    ((field, wanted),) = spec.items()
    if kind == "range":
        if document["price"] is None:
            return False
        cents = round(Decimal(document["price"]) * 100)
        low = math.ceil(Decimal(wanted["gte"]) * 100) if "gte" in wanted else cents
        high = math.floor(Decimal(wanted["lte"]) * 100) if "lte" in wanted else cents
        return low <= cents <= high
    lowercase = KEYWORD_FIELDS[field][1]
    terms = wanted if kind == "terms" else [wanted]
    return bool({t.lower() if lowercase else t for t in terms} & _indexed_terms(document, field))


@pytest.mark.parametrize(
    "filters",
    [
        SearchFilters(brands=("hp", "EPSON")),
        SearchFilters(excluded_brands=("hp", "EPSON"), max_price=Decimal("49.95")),
        SearchFilters(min_price=Decimal("10"), max_price=Decimal("49.95")),
        SearchFilters(max_price=Decimal("29.99")),
        SearchFilters(attributes={"Print technology": "laser printing"}),
        SearchFilters(attributes={"quantity_per_pack": "1"}),
        SearchFilters(attributes={"rgb": "true", "Max-DPI": "8000"}),
        SearchFilters(category="mice"),
        SearchFilters(brands=("Logitech",), category="Mice", max_price=Decimal("99.00")),
    ],
    ids=[
        "brands",
        "excluded-brands",
        "price-range",
        "max-price",
        "attr-text",
        "attr-number",
        "attr-bool-and-number",
        "category",
        "combined",
    ],
)
def test_filter_clauses_meet_the_indexed_tokens(
    chorus_and_samples: list[Product], filters: SearchFilters
) -> None:
    """What the query side sends matches what the index side wrote, as SearchFilters.matches."""
    clauses = json.loads(json.dumps(filter_clauses(filters)))
    expected = {p.id for p in chorus_and_samples if filters.matches(p)}
    assert expected

    excluded = json.loads(json.dumps(exclusion_clauses(filters)))

    documents = [json.loads(json.dumps(to_document(p))) for p in chorus_and_samples]
    selected = {
        d["id"]
        for d in documents
        if all(_selects(c, d) for c in clauses) and not any(_selects(c, d) for c in excluded)
    }

    assert selected == expected


@pytest.fixture(scope="module")
def chorus_and_samples(shared_data: Path) -> list[Product]:
    report = ImportReport()
    chorus = itertools.islice(iter_products(shared_data / "chorus-electronics", report), 400)
    return [*chorus, *sample_products(), MOUSE, HEADPHONES]
