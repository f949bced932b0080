"""Shared row handling for importers: encodings, CSV rows, value parsing, first-id-wins admission.

Every importer reads rows, turns each into a ``Product`` or a ``BadRow`` reason, and hands the
product to ``Admission``; so "accepted + rejected == rows read" holds the same way everywhere.
"""

from __future__ import annotations

import codecs
import csv
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from tools.catalog.import_report import ImportReport
from tools.catalog.judgments import Query
from tools.catalog.product import MAX_PRICE, AttributeValue, PriceError, Product, parse_price
from tools.errors import BadInput

_CHUNK = 1 << 20
_MAX_FIELD = 1 << 24
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_Row = TypeVar("_Row")


class BadRow(BadInput):
    """One row cannot become a product; the message is the reason recorded in the report."""


class CatalogFormatError(BadInput):
    """A whole file is unusable (missing, or missing a required column): nothing can be imported."""


#: A file's first bytes that say it is UTF-32 or UTF-16 (UTF-32 LE starts like UTF-16 LE).
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def refuse_wide_encoding(path: Path, head: bytes) -> None:
    """A ``CatalogFormatError`` if ``head`` (the file's first bytes) is UTF-16 or UTF-32 text:
    a BOM that says so, or NUL bytes in a quarter of the first 4 KiB (UTF-16 without a BOM;
    text in any 8-bit encoding has none).

    Read as latin-1, a UTF-16 CSV (what Excel's "Unicode text" writes) had a header of
    ``\xff\xfei\x00d\x00``, reported as "missing column(s) id, title".
    """
    encoding = next((name for bom, name in _WIDE_BOMS if head.startswith(bom)), None)
    sample = head[:4096]
    if encoding is None and len(sample) >= 4 and sample.count(0) * 4 >= len(sample):
        encoding = "UTF-16"
    if encoding is not None:
        raise CatalogFormatError(
            f"{path}: the file is {encoding}, not UTF-8; save it as UTF-8 and import it again"
        )


def detect_encoding(path: Path) -> str:
    """``utf-8`` (``utf-8-sig`` with a BOM) if all bytes decode, else ``latin-1`` (never fails).

    Old exports (the original Home Depot Kaggle files among them) are latin-1; a per-file check
    keeps one stray byte from turning a whole catalog into mojibake or an error. A UTF-16 or
    UTF-32 file is refused (``refuse_wide_encoding``): read as latin-1 it is noise.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        first = handle.read(_CHUNK)
        refuse_wide_encoding(path, first)
        encoding = "utf-8-sig" if first.startswith(codecs.BOM_UTF8) else "utf-8"
        chunk = first
        try:
            while chunk:
                decoder.decode(chunk)
                chunk = handle.read(_CHUNK)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "latin-1"
    return encoding


def iter_csv_rows(
    path: Path,
    report: ImportReport,
    *,
    required: Sequence[str],
    delimiter: str = ",",
    source: str | None = None,
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for each well-formed data row; malformed rows go to ``report``.

    The encoding is detected per file and noted in the report. A missing required column is a
    ``CatalogFormatError`` before any row is read, so an import never stops half-way. The row
    number is the file line the row starts on.

    An unclosed quote must not swallow the rows after it: quotes are read strictly (a closing
    quote must end its field), and a row that fails while spanning several lines costs only
    its first line; the lines after it are read again as rows of their own.
    """
    name = source or path.name
    encoding = detect_encoding(path)
    report.note(f"{name} read as {encoding}")
    csv.field_size_limit(max(csv.field_size_limit(), _MAX_FIELD))
    with path.open(encoding=encoding, newline="") as handle:
        lines = _PhysicalLines(handle)
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        try:
            header = [column.strip() for column in next(reader)]
        except StopIteration:
            raise CatalogFormatError(f"{path}: the file is empty (expected a header row)") from None
        except csv.Error as error:
            raise CatalogFormatError(f"{path}: unreadable header row ({error})") from None
        missing = [column for column in required if column not in header]
        if missing:
            listed = ", ".join(header)
            listed = listed if len(listed) <= 200 else listed[:199] + "…"
            raise CatalogFormatError(
                f"{path}: missing column(s) {', '.join(missing)} (header: {listed})"
            )
        while True:
            lines.start_row()
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                spanned = lines.row_lines()
                if len(spanned) > 1:
                    lines.read_again(spanned[1:])
                    reason = f"malformed CSV: {error} (an unclosed quote; the next lines kept)"
                else:
                    reason = f"malformed CSV: {error}"
                report.reject(name, lines.row_start(), reason)
                continue
            if not fields:
                continue
            if len(fields) != len(header):
                report.reject(
                    name,
                    lines.row_start(),
                    f"wrong number of fields: expected {len(header)}, got {len(fields)}",
                )
                continue
            yield lines.row_start(), dict(zip(header, fields, strict=True))


class _PhysicalLines:
    """The file's lines for ``csv.reader``, numbered, with the lines of the current row kept
    so that a row that went wrong can hand all but its first line back to be read again."""

    def __init__(self, handle: Iterator[str]) -> None:
        self._handle = handle
        self._again: list[tuple[int, str]] = []
        self._row: list[tuple[int, str]] = []
        self._number = 0

    def __iter__(self) -> _PhysicalLines:
        return self

    def __next__(self) -> str:
        if self._again:
            numbered = self._again.pop()
        else:
            self._number += 1
            numbered = (self._number, next(self._handle))
        self._row.append(numbered)
        return numbered[1]

    def start_row(self) -> None:
        self._row = []

    def row_lines(self) -> list[tuple[int, str]]:
        return list(self._row)

    def row_start(self) -> int:
        return self._row[0][0] if self._row else self._number

    def read_again(self, lines: list[tuple[int, str]]) -> None:
        self._again.extend(reversed(lines))


def text(value: Any) -> str:
    """A cell as clean text: ``None`` (and parquet nulls) become ``""``; whitespace is trimmed."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def cell_price(value: Any) -> Decimal | None:
    """A catalog cell's price (``"49.95"`` or a JSON number), read by ``parse_price`` as written.

    What is specific to cells: a blank cell means unknown; currency marks and digit grouping
    are refused rather than cleaned (``"12,99"`` is a decimal comma in many exports, not 1299);
    and the reason is worded for the import report (``bad price: '12,99'``). Raises ``BadRow``.
    """
    if isinstance(value, str) and not value.strip():
        return None
    try:
        return parse_price(value, plain=True)
    except PriceError as error:
        if error.rule == "negative":
            raise BadRow(f"negative price: {value!r}") from None
        # 1e999999999 once made one search take 103 s; 1e400 printed as 400 digits.
        ceiling = f" is above the ceiling of {MAX_PRICE}" if error.rule == "ceiling" else ""
        raise BadRow(f"bad price: {value!r}{ceiling}") from None


def identifier(value: Any) -> str:
    """A product id from a cell: text, or an integer (JSON ``42`` is ``"42"``); empty if absent.

    Lists, objects, booleans and fractional numbers are refused (``BadRow``): stored as their
    Python repr they would be ids no one can type or match.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    kind = type(value).__name__
    raise BadRow(f"bad id: a {kind} ({_short_repr(value)}), expected text or an integer")


def _short_repr(value: Any, limit: int = 40) -> str:
    try:
        text = repr(value)
    except RecursionError:
        text = "…"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 (a date alone is midnight); times without a zone are UTC, so all compare."""
    raw = text(value)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRow(f"bad updated_at: {raw!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def attribute_value(value: Any) -> AttributeValue:
    """A JSON attribute value as a product attribute: booleans stay, numbers become float.

    Raises ``BadRow`` for lists, objects and nulls, which the product model cannot hold.
    """
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float | Decimal):
        number = float(value)
        return number if math.isfinite(number) else str(value)
    raise BadRow(f"bad attribute value: {_short_repr(value)} (only text, numbers and booleans)")


def infer_attribute(raw: str) -> AttributeValue:
    """A text cell typed the way people mean it: ``true``/``false``, numbers, else text."""
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _NUMBER.fullmatch(raw):
        return float(raw)
    return raw


def make_product(**fields: Any) -> Product:
    """``Product(...)`` with its validation errors (empty id or title) turned into ``BadRow``."""
    if not text(fields.get("id")):
        raise BadRow("missing id")
    if not text(fields.get("title")):
        raise BadRow("missing title")
    try:
        return Product(**fields)
    except ValueError as error:
        raise BadRow(str(error)) from None


class Admission:
    """Counts each product once: the first with an id is accepted, later ones are rejected."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        self.seen: set[str] = set()

    def admit(self, product: Product, source: str, row: int) -> bool:
        if product.id in self.seen:
            self.report.reject(source, row, f"duplicate id: {product.id}")
            return False
        self.seen.add(product.id)
        self.report.accepted += 1
        return True

    def admit_row(
        self, source: str, row: int, build: Callable[[_Row], Product], record: _Row
    ) -> Product | None:
        """The product ``build(record)`` makes of one row if it is the first with its id.

        ``None`` when the row is rejected: a ``BadRow`` from ``build`` and a repeated id are
        both recorded against ``source:row``, so every importer counts a row the same way.
        """
        try:
            product = build(record)
        except BadRow as error:
            self.report.reject(source, row, str(error))
            return None
        return product if self.admit(product, source, row) else None


def split_path(value: Any, separator: str) -> tuple[str, ...]:
    """A category path from text (``"A > B"``) or a list, with blank parts dropped."""
    if isinstance(value, list | tuple):
        parts = [text(part) for part in value]
    else:
        parts = [part.strip() for part in text(value).split(separator)]
    return tuple(part for part in parts if part)


def lookup(row: Mapping[str, Any], *names: str) -> Any:
    """The first present, non-empty value among ``names`` (for optional, aliased columns)."""
    for name in names:
        value = row.get(name)
        if text(value):
            return value
    return None


class QueryTexts(dict[str, Query]):
    """``Query`` objects by text, hashed once per distinct text (judgment files repeat them)."""

    def __missing__(self, query_text: str) -> Query:
        query = self[query_text] = Query.from_text(query_text)
        return query
