"""The two shapes a product takes in the agent: the catalog's ``Product`` and the shown one.

Why two and no more: from the search backends through the tools, the state (``retrieved``)
and grounding, a product is the catalog's own ``tools.catalog.product.Product``. Once the
reply picks it, it becomes a ``ShownProduct``: its place in the list the shopper sees, with
the catalog's title, brand and price at answer time. That one value is what the terminal
renders, what "the second one" points into (``AgentState.last_shown``) and, as a dict
(``as_record``), what the trajectory log records as ``recommended``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from tools.catalog.product import Product


@dataclass(frozen=True, slots=True)
class ShownProduct:
    """A recommended product as the catalog has it (never the model's wording)."""

    position: int
    id: str
    title: str
    brand: str
    price: str | None
    category: str = ""

    @classmethod
    def from_product(cls, position: int, product: Product) -> ShownProduct:
        return cls(
            position=position,
            id=product.id,
            title=product.title,
            brand=product.brand,
            price=None if product.price is None else str(product.price),
            category=product.category,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShownProduct:
        """A shown product as the log records it (``as_record``), or as older checkpoints
        kept it."""
        return cls(
            position=int(data["position"]),
            id=str(data["id"]),
            title=str(data["title"]),
            brand=str(data.get("brand") or ""),
            price=data.get("price"),
            category=str(data.get("category") or ""),
        )

    def as_record(self) -> dict[str, Any]:
        """The trajectory log's form: position, id, title, brand, price, category."""
        return asdict(self)

    def as_product(self) -> Product:
        """What was shown, as a ``Product``: the best there is when the catalog is down."""
        return Product.from_dict(
            {"id": self.id, "title": self.title, "brand": self.brand, "price": self.price}
        )


def renumber(products: Sequence[ShownProduct]) -> list[ShownProduct]:
    """The list numbered 1, 2, 3... again (after some were filtered out)."""
    return [replace(p, position=i) for i, p in enumerate(products, start=1)]
