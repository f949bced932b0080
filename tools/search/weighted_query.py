"""The expanded query, built once for each lexical backend: the shopper's words plus added words.

A ``SearchRequest`` with ``expansions`` (RM3 feedback terms, typo corrections, the policy's
``add_terms``) is searched as, per text field,

    field_boost * ( sum over the request's words  score(word)
                  + sum over added words           weight * score(word) )

and the fields are combined with ``dis_max`` and the plain query's tie breaker. With no
expansions the backends build their plain query instead, so a request that only copies the
shopper's words ranks exactly as the raw search (the reward's zero point depends on that).

Both backends get the same shape: tantivy as ``boolean_query`` should-clauses of term queries
(added words wrapped in ``boost_query``) inside the per-field boosts and ``disjunction_max``;
Elasticsearch as ``dis_max`` over per-field ``bool`` should-clauses of ``match`` queries with
boosts. Words are analysed by each backend's own (identical) English chain, never parsed as
query syntax: a word like ``title:foo`` or ``a OR b`` is just text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import tantivy

from tools.search.request import SearchRequest

#: ``(index field, analysed term) -> query`` for one of the request's own words.
TermQuery = Callable[[str, str], tantivy.Query]


def tantivy_weighted_query(
    request: SearchRequest,
    *,
    schema: tantivy.Schema,
    analyse: Callable[[str], list[str]],
    fields: Mapping[str, str],
    tie_breaker: float,
    own_term: TermQuery,
) -> tantivy.Query | None:
    """The expanded text query for tantivy, or None when no added word has a searchable term.

    ``own_term`` builds the query for one of the shopper's terms (exact, or fuzzy when the
    request asks for it), so those terms score exactly as in the plain query.
    """
    added = [(term, weight) for word, weight in request.expansions for term in analyse(word)]
    if not added:
        return None
    own = analyse(request.text)
    per_field: list[tantivy.Query] = []
    for request_field, boost in request.boosts.items():
        if boost <= 0:
            continue
        field = fields[request_field]
        clauses = [(tantivy.Occur.Should, own_term(field, term)) for term in own]
        for term, weight in added:
            exact = tantivy.Query.term_query(schema, field, term, index_option="freq")
            clauses.append((tantivy.Occur.Should, tantivy.Query.boost_query(exact, weight)))
        should = tantivy.Query.boolean_query(clauses)
        per_field.append(tantivy.Query.boost_query(should, boost))
    if not per_field:
        return None
    return tantivy.Query.disjunction_max_query(per_field, tie_breaker=tie_breaker)


def es_weighted_clause(
    request: SearchRequest, *, fields: Mapping[str, str], tie_breaker: float
) -> dict[str, Any] | None:
    """The same query as an Elasticsearch clause, or None without expansions.

    ``match`` (operator ``or``) on one field sums its terms' BM25 scores like tantivy's
    should-clauses; a ``match`` per added word carries that word's weight as its ``boost``.
    """
    if not request.expansions:
        return None
    queries: list[dict[str, Any]] = []
    for request_field, boost in request.boosts.items():
        if boost <= 0:
            continue
        field = fields[request_field]
        should: list[dict[str, Any]] = []
        if request.text.strip():
            own: dict[str, Any] = {"query": request.text, "operator": "or"}
            if request.fuzzy:
                own["fuzziness"] = "AUTO"
            should.append({"match": {field: own}})
        for word, weight in request.expansions:
            should.append({"match": {field: {"query": word, "boost": weight}}})
        queries.append({"bool": {"should": should, "boost": boost}})
    if not queries:
        return None
    return {"dis_max": {"queries": queries, "tie_breaker": tie_breaker}}
