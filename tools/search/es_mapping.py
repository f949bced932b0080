"""What the Elasticsearch backend sends: the index template, documents and query bodies.

Pure functions with no client, so the exact JSON on the wire can be read, tested and
compared with the embedded tantivy backend in one place.
"""

from __future__ import annotations

import re
from typing import Any

from tools.catalog.product import Product, normalise_attribute_key
from tools.errors import BadInput
from tools.search.measures import MEASURES_FIELD, measure_boost, measure_tokens, measures_text
from tools.search.request import SEARCH_FIELDS, SearchFilters, SearchRequest, attribute_token
from tools.search.title_match import es_title_clauses, plan_title_match
from tools.search.weighted_query import es_weighted_clause

#: Bumped whenever the mapping changes, so an index built by an older release is recognisable.
SCHEMA_VERSION = 2
ANALYZER = "shop_english"
NORMALIZER = "shop_lowercase"
#: Request boost field -> indexed text field: each under its own name except ``attributes``,
#: indexed as flattened ``key value`` text beside the ``attributes_kv`` filter keywords.
TEXT_FIELDS: dict[str, str] = {name: name for name in SEARCH_FIELDS} | {
    "attributes": "attributes_text"
}
#: Same tie breaker as the tantivy backend's ``dis_max``, so both lexical backends rank alike.
TIE_BREAKER = 0.3
#: Longer keyword values are kept in ``_source`` but not indexed (Lucene rejects huge terms).
KEYWORD_IGNORE_ABOVE = 256
ATTRIBUTE_IGNORE_ABOVE = 512
_INDEX_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


def index_name_for(dataset: str) -> str:
    """``shopagent-<dataset>``, refusing names Elasticsearch would reject."""
    name = f"shopagent-{dataset.strip().lower()}"
    if not dataset.strip() or not _INDEX_NAME.fullmatch(name) or len(name.encode()) > 255:
        raise BadInput(
            f"dataset name {dataset!r} cannot name an Elasticsearch index "
            "(use letters, digits, '.', '_' or '-')"
        )
    return name


def template_name_for(index_name: str) -> str:
    return f"{index_name}-template"


def index_settings() -> dict[str, Any]:
    """One shard keeps BM25 statistics global, so scores do not depend on shard routing;
    replicas only where a second node exists (a single dev node stays green)."""
    return {
        "number_of_shards": 1,
        "auto_expand_replicas": "0-1",
        "analysis": {
            "filter": {
                "shop_english_possessive": {"type": "stemmer", "language": "possessive_english"},
                "shop_english_stop": {"type": "stop", "stopwords": "_english_"},
                # porter2 is the Snowball English stemmer that tantivy's "english" also uses.
                "shop_english_stemmer": {"type": "stemmer", "language": "porter2"},
            },
            "analyzer": {
                ANALYZER: {
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
            # Lower case only (no folding): filters must agree with SearchFilters.matches.
            "normalizer": {NORMALIZER: {"type": "custom", "filter": ["lowercase"]}},
        },
    }


def index_mappings() -> dict[str, Any]:
    """Strict mapping: a stray field is an error, and ``doc`` is stored but never mapped
    (Chorus alone has ~5,300 attribute keys that would otherwise explode the mapping)."""
    english = {"type": "text", "analyzer": ANALYZER}
    return {
        "dynamic": "strict",
        "_meta": {"schema_version": SCHEMA_VERSION},
        "properties": {
            "id": {"type": "keyword"},
            "title": {
                **english,
                "fields": {"raw": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}},
            },
            "brand": {
                **english,
                "fields": {
                    "keyword": {
                        "type": "keyword",
                        "normalizer": NORMALIZER,
                        "ignore_above": KEYWORD_IGNORE_ABOVE,
                    }
                },
            },
            "category": dict(english),
            "category_path": {
                "type": "keyword",
                "normalizer": NORMALIZER,
                "ignore_above": KEYWORD_IGNORE_ABOVE,
            },
            "description": dict(english),
            "attributes_text": dict(english),
            # Measure tokens made in Python (tools.search.measures), split on whitespace only:
            # the same tokens tantivy's built-in ``whitespace`` tokenizer indexes.
            MEASURES_FIELD: {"type": "text", "analyzer": "whitespace"},
            # Tokens are normalised in Python (attribute_kv), the same code the filter uses.
            "attributes_kv": {"type": "keyword", "ignore_above": ATTRIBUTE_IGNORE_ABOVE},
            # Cents stored as a long: exact for catalog prices, and range bounds are sent as
            # decimal strings that Elasticsearch scales with BigDecimal.
            "price": {"type": "scaled_float", "scaling_factor": 100},
            "image_url": {"type": "keyword", "index": False, "doc_values": False},
            "updated_at": {"type": "date"},
            "doc": {"type": "object", "enabled": False},
        },
    }


def index_template(index_name: str) -> dict[str, Any]:
    """The composable template body (``PUT _index_template/<name>``) for one index."""
    return {
        "index_patterns": [index_name],
        "priority": 200,
        "template": {"settings": index_settings(), "mappings": index_mappings()},
        "_meta": {"managed_by": "shopagent", "schema_version": SCHEMA_VERSION},
    }


def attribute_kv(key: str, value: object) -> str:
    """The single keyword an attribute-equality filter matches: ``max_dpi=16000``."""
    return f"{normalise_attribute_key(key)}={attribute_token(value)}"


def to_document(product: Product) -> dict[str, Any]:
    """One indexed document; ``doc`` keeps ``Product.to_dict()`` so a hit rebuilds it exactly."""
    attributes_text = product.searchable_attributes()
    return {
        "id": product.id,
        "title": product.title,
        "description": product.description,
        "brand": product.brand,
        "category": product.category,
        "category_path": list(product.category_path),
        "price": None if product.price is None else format(product.price, "f"),
        "attributes_text": attributes_text,
        MEASURES_FIELD: measures_text(product.title, attributes_text),
        "attributes_kv": [attribute_kv(k, v) for k, v in product.attributes.items()],
        "image_url": product.image_url,
        "updated_at": None if product.updated_at is None else product.updated_at.isoformat(),
        "doc": product.to_dict(),
    }


def search_body(request: SearchRequest) -> dict[str, Any]:
    """The ``_search`` body: scored text in ``must``, non-scoring constraints in ``filter``."""
    text = text_clause(request)
    measures = measure_clause(request)
    if measures is not None:
        text = {"bool": {"should": [text, measures], "minimum_should_match": 1}}
    boolean: dict[str, Any] = {"must": [text]}
    match = plan_title_match(request.text) if request.title_match else None
    if match is not None:
        boolean["should"] = es_title_clauses(match)
    filters = filter_clauses(request.filters)
    if filters:
        boolean["filter"] = filters
    excluded = exclusion_clauses(request.filters)
    if excluded:
        boolean["must_not"] = excluded
    return {
        "query": {"bool": boolean},
        "size": request.size,
        "_source": ["doc"],
        "track_total_hits": True,
    }


def text_clause(request: SearchRequest) -> dict[str, Any]:
    """User text only ever becomes ``multi_match`` query text, never query syntax.

    ``best_fields`` with a tie breaker rather than ``cross_fields``: Elasticsearch rejects
    fuzziness on ``cross_fields``, so this is the one type that serves fuzzy and exact
    requests alike (their scores stay comparable); the tie breaker still credits terms spread
    over several fields (brand in ``brand``, noun in ``title``); and it is the ``dis_max``
    the tantivy backend builds, so both lexical backends rank the same way.
    """
    weighted = es_weighted_clause(request, fields=TEXT_FIELDS, tie_breaker=TIE_BREAKER)
    if weighted is not None:
        return weighted
    fields = boosted_fields(request.boosts)
    # No searchable words ("", "*", "(((", "the"): with filters that is browsing them; with
    # none nothing was asked for, so nothing matches (not the first products at score 1).
    browse = not request.filters.is_empty()
    if not request.text.strip() or not fields:
        return {"match_all": {}} if browse else {"match_none": {}}
    clause: dict[str, Any] = {
        "query": request.text,
        "type": "best_fields",
        "fields": fields,
        "operator": "or",
        "tie_breaker": TIE_BREAKER,
        # Text that analyses to no terms: as above, and as in the tantivy backend.
        "zero_terms_query": "all" if browse else "none",
    }
    if request.fuzzy:
        clause["fuzziness"] = "AUTO"
    return {"multi_match": clause}


def measure_clause(request: SearchRequest) -> dict[str, Any] | None:
    """The request's measures (``tools.search.measures``) matched against the products'
    measure tokens, or None when it holds none; ``search_body`` lets either this or the text
    match and adds the scores, as the tantivy backend's ``_measure_query``."""
    tokens = measure_tokens(request.text)
    boost = measure_boost(request.boosts)
    if not tokens or boost <= 0:
        return None
    return {"match": {MEASURES_FIELD: {"query": " ".join(tokens), "boost": boost}}}


def boosted_fields(boosts: dict[str, float]) -> list[str]:
    """``field^boost`` for every positively boosted request field (zero means "not searched")."""
    return [f"{TEXT_FIELDS[name]}^{boost:g}" for name, boost in boosts.items() if boost > 0]


def filter_clauses(filters: SearchFilters) -> list[dict[str, Any]]:
    """Exact, case-insensitive constraints with the semantics of ``SearchFilters.matches``."""
    clauses: list[dict[str, Any]] = []
    if filters.brands:
        brands = list(dict.fromkeys(brand.lower() for brand in filters.brands))
        clauses.append({"terms": {"brand.keyword": brands}})
    if filters.category:
        clauses.append({"term": {"category_path": filters.category.lower()}})
    if filters.min_price is not None or filters.max_price is not None:
        bounds: dict[str, str] = {}
        if filters.min_price is not None:
            bounds["gte"] = format(filters.min_price, "f")
        if filters.max_price is not None:
            bounds["lte"] = format(filters.max_price, "f")
        clauses.append({"range": {"price": bounds}})
    for key, value in filters.attributes.items():
        clauses.append({"term": {"attributes_kv": attribute_kv(key, value)}})
    return clauses


def exclusion_clauses(filters: SearchFilters) -> list[dict[str, Any]]:
    """``must_not`` clauses: the excluded brands on the normalised brand keyword, so "not
    sony" drops "Sony" and "SONY" alike, as ``SearchFilters.matches`` does."""
    if not filters.excluded_brands:
        return []
    brands = list(dict.fromkeys(brand.lower() for brand in filters.excluded_brands))
    return [{"terms": {"brand.keyword": brands}}]
