"""What every backend returns: ranked hits that carry the catalog's own product record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tools.catalog.product import Product


@dataclass(frozen=True, slots=True)
class SearchHit:
    product: Product
    score: float
    rank: int  # 1-based

    @property
    def product_id(self) -> str:
        return self.product.id


@dataclass(frozen=True, slots=True)
class SearchResults:
    hits: list[SearchHit]
    backend: str
    took_ms: float = 0.0
    total: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [hit.product.id for hit in self.hits]

    def __len__(self) -> int:
        return len(self.hits)


def ranked(products_with_scores: list[tuple[Product, float]]) -> list[SearchHit]:
    """Hits numbered 1..n in the given order."""
    return [SearchHit(p, s, i) for i, (p, s) in enumerate(products_with_scores, start=1)]
