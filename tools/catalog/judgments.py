"""Relevance judgments: one qrels model (query -> product -> graded gain) shared with evals."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field


def query_id_for(text: str) -> str:
    """A stable, whitespace-free id for a query text (TREC run files need one)."""
    return "q" + hashlib.sha1(" ".join(text.lower().split()).encode()).hexdigest()[:10]


@dataclass(frozen=True, slots=True)
class Query:
    id: str
    text: str

    @classmethod
    def from_text(cls, text: str) -> Query:
        return cls(query_id_for(text), " ".join(text.split()))


@dataclass(slots=True)
class Judgments:
    """Queries with their graded judgments. Unjudged products are unknown, scored as gain 0."""

    queries: dict[str, Query] = field(default_factory=dict)
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    max_gain: int = 1

    def add(self, query: Query, product_id: str, gain: int) -> None:
        self.queries.setdefault(query.id, query)
        self.qrels.setdefault(query.id, {})[product_id] = gain
        self.max_gain = max(self.max_gain, gain)

    def with_positive(self) -> list[Query]:
        """Queries that have at least one relevant product (the ones a ranking metric can score)."""
        return [
            q for qid, q in self.queries.items() if any(g > 0 for g in self.qrels[qid].values())
        ]

    def subset(self, query_ids: Iterable[str]) -> Judgments:
        ids = list(query_ids)
        return Judgments(
            queries={qid: self.queries[qid] for qid in ids},
            qrels={qid: dict(self.qrels[qid]) for qid in ids},
            max_gain=self.max_gain,
        )

    def judged_products(self) -> set[str]:
        return {pid for judged in self.qrels.values() for pid in judged}

    def __len__(self) -> int:
        return len(self.queries)

    def __iter__(self) -> Iterator[Query]:
        return iter(self.queries.values())

    def gains(self, query_id: str) -> Mapping[str, int]:
        return self.qrels.get(query_id, {})
