"""The one product model every importer produces and every backend indexes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

AttributeValue = str | float | bool


@dataclass(frozen=True, slots=True)
class Product:
    """A catalog item. Prices are exact decimals so that "under 50" never rounds the wrong way."""

    id: str
    title: str
    description: str = ""
    brand: str = ""
    category_path: tuple[str, ...] = ()
    price: Decimal | None = None
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    image_url: str = ""
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.id or not str(self.id).strip():
            raise ValueError("product id is empty")
        if not self.title or not self.title.strip():
            raise ValueError(f"product {self.id} has no title")
        if self.price is not None and self.price < 0:
            raise ValueError(f"product {self.id} has a negative price")

    @property
    def category(self) -> str:
        """The category path as one string, e.g. ``Electronics > Mice``."""
        return " > ".join(self.category_path)

    def searchable_attributes(self) -> str:
        """Attribute text for full-text fields: ``key value`` pairs, booleans only when true."""
        parts: list[str] = []
        for key, value in self.attributes.items():
            label = key.replace("_", " ")
            if isinstance(value, bool):
                if value:
                    parts.append(label)
            else:
                parts.append(f"{label} {format_attribute(value)}")
        return " ; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (price as a string, time as ISO 8601) that ``from_dict`` reads back."""
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "brand": self.brand,
            "category_path": list(self.category_path),
            "price": None if self.price is None else str(self.price),
            "attributes": dict(self.attributes),
            "image_url": self.image_url,
            "updated_at": None if self.updated_at is None else self.updated_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Product:
        price = data.get("price")
        updated = data.get("updated_at")
        return cls(
            id=str(data["id"]),
            title=str(data["title"]),
            description=str(data.get("description") or ""),
            brand=str(data.get("brand") or ""),
            category_path=tuple(data.get("category_path") or ()),
            price=None if price in (None, "") else Decimal(str(price)),
            attributes=dict(data.get("attributes") or {}),
            image_url=str(data.get("image_url") or ""),
            updated_at=None if not updated else datetime.fromisoformat(str(updated)),
        )


def format_attribute(value: AttributeValue) -> str:
    """Attribute values as people write them: ``16.0`` becomes ``16``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def normalise_attribute_key(key: str) -> str:
    """Attribute keys compared case- and space-insensitively (``Max DPI`` == ``max_dpi``)."""
    return "_".join(key.strip().lower().replace("-", " ").split())
