"""The one product model every importer produces and every backend indexes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tools.errors import BadInput

AttributeValue = str | float | bool

#: The highest price a catalog row, a filter or a tool call may carry (ten million in the
#: catalog's currency). Above it a value is a data error, not a price: ``1e999999999`` once
#: made one search take 103 s and 5 GB, and ``1e400`` printed as a 400-digit number.
MAX_PRICE = Decimal(10_000_000)
_CURRENCY_MARKS = "$€£¥"


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
            raise BadInput("product id is empty")
        if not self.title or not self.title.strip():
            raise BadInput(f"product {self.id} has no title")
        if self.price is not None:
            object.__setattr__(self, "price", parse_price(self.price, f"product {self.id} price"))

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
            price=parse_price(price, "price"),
            attributes=dict(data.get("attributes") or {}),
            image_url=str(data.get("image_url") or ""),
            updated_at=None if not updated else datetime.fromisoformat(str(updated)),
        )


class PriceError(BadInput):
    """A value that is not a usable price.

    ``rule`` names the rule it broke (``"number"``, ``"negative"`` or ``"ceiling"``), so that a
    caller with its own wording (the import report's ``bad price: ...``) can say it without
    checking the value a second time.
    """

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


def parse_price(value: object, name: str = "price", *, plain: bool = False) -> Decimal | None:
    """A price from a catalog cell, a CLI flag or a tool-call argument; the one reading of all.

    ``None`` and ``""`` mean no price. ``"$1,299"`` and ``"1 299 €"`` read as 1299, unless
    ``plain``: then the text must be the number alone (catalog cells, where ``"12,99"`` is a
    decimal comma, not 1299). A value that is not a finite number from 0 to ``MAX_PRICE``
    (``"abc"``, ``nan``, ``inf``, ``-5``, ``1e400``, a boolean) raises ``PriceError`` naming
    ``name``; ``-0`` reads as 0.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise PriceError(f"{name} must be a number, got {value!r}", "number")
    text = str(value).strip()
    if not plain:
        text = amount_text(text.strip(_CURRENCY_MARKS).strip())
    try:
        price = value if isinstance(value, Decimal) else Decimal(text)
    except (InvalidOperation, ValueError):
        raise PriceError(f"{name} must be a number, got {_short(value)}", "number") from None
    if not price.is_finite():
        raise PriceError(f"{name} must be a finite number, got {_short(value)}", "number")
    if price < 0:
        raise PriceError(f"{name} must not be negative, got {_short(value)}", "negative")
    if price > MAX_PRICE:
        raise PriceError(
            f"{name} is above the price ceiling of {MAX_PRICE}, got {_short(value)}", "ceiling"
        )
    return Decimal(0) if price == 0 else price


def price_or_none(value: object) -> Decimal | None:
    """``parse_price``'s reading, or None for anything that is not a usable price: where a value
    comes from a model or a shopper, ``"1e999999999"`` or ``-5`` is no price at all, never an
    overflow or a limit of 5."""
    try:
        return parse_price(value, "price")
    except PriceError:
        return None


def amount_text(number: str) -> str:
    """An amount as a shopper writes it, in ``Decimal``'s spelling: the one reading of digit
    groups for the CLI, tool calls and the chat.

    ``1,299.99`` and ``1.299,99`` and ``1 299`` are thousands; a lone ``,`` or ``.`` before one
    or two digits is the decimal mark (``12,99`` is 12.99, as the chat reads it, not 1299);
    anything else is left for ``Decimal`` to accept or refuse (``1e400``, ``-5``, ``abc``).
    """
    text = number.replace(" ", "").replace("\u00a0", "")
    if _THOUSANDS_COMMA.fullmatch(text):
        return text.replace(",", "")
    if _THOUSANDS_DOT.fullmatch(text):
        return text.replace(".", "").replace(",", ".")
    if _DECIMAL_COMMA.fullmatch(text):
        return text.replace(",", ".")
    return text


_THOUSANDS_COMMA = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?")
_THOUSANDS_DOT = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d{1,2}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
