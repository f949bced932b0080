"""The generic catalog format: one product per JSONL line or CSV row (see docs/catalog-format.md).

Fields (JSONL keys or CSV columns); only ``id`` and ``title`` are required:

- ``id``: unique product id (text; numbers are read as text). Later duplicates are rejected.
- ``title``: product title.
- ``description``, ``brand``, ``image_url``: text.
- ``category``: the category path, parts joined by ``" > "`` (``Electronics > Mice``); JSONL
  may also give a list of parts (as ``category`` or ``category_path``).
- ``price``: a decimal string such as ``"49.95"`` (JSONL may use a number); empty = unknown.
- ``updated_at``: ISO 8601 date or date-time; without a time zone it is taken as UTC.
- attributes: a JSON object ``attributes`` of text, number or boolean values (in CSV, a column
  holding that JSON), and/or in CSV one ``attr.<name>`` column per attribute, whose cells are
  read as ``true``/``false``, a number, or else text; an empty cell means "not set".

Judgments sit in a separate CSV with the header ``query,product_id,gain`` (gain: integer >= 0).
Rows that cannot be read (missing id or title, bad price or date, malformed JSON, not UTF-8,
duplicate id) are skipped and recorded in the ``ImportReport``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from tools.catalog.import_report import ImportReport
from tools.catalog.judgments import Judgments
from tools.catalog.product import AttributeValue, Product
from tools.catalog.rows import (
    Admission,
    BadRow,
    CatalogFormatError,
    QueryTexts,
    attribute_value,
    cell_price,
    identifier,
    infer_attribute,
    iter_csv_rows,
    lookup,
    make_product,
    parse_datetime,
    refuse_wide_encoding,
    split_path,
    text,
)

CATEGORY_SEPARATOR = " > "
ATTRIBUTE_PREFIX = "attr."
FIELDS = ("id", "title", "description", "brand", "category", "price", "image_url", "updated_at")
JUDGMENT_FIELDS = ("query", "product_id", "gain")
_KNOWN_KEYS = {*FIELDS, "category_path", "attributes"}


def product_from_record(record: Mapping[str, Any]) -> Product:
    """One JSONL object or CSV row (``attr.*`` columns included) as a ``Product``, or ``BadRow``."""
    attributes = _attributes(record)
    title = record.get("title")
    if isinstance(title, list | dict | bool):
        raise BadRow(f"bad title: a {type(title).__name__}, expected text")
    return make_product(
        id=identifier(record.get("id")),
        title=text(title),
        description=text(record.get("description")),
        brand=text(record.get("brand")),
        category_path=split_path(lookup(record, "category", "category_path"), CATEGORY_SEPARATOR),
        price=cell_price(record.get("price")),
        attributes=attributes,
        image_url=text(record.get("image_url")),
        updated_at=parse_datetime(record.get("updated_at")),
    )


def product_to_record(product: Product) -> dict[str, Any]:
    """The generic JSONL object for a product (what ``product_from_record`` reads back).

    ``Product.to_dict`` in the documented field order, with the category path as one
    ``" > "``-joined string as the format has it.
    """
    data = product.to_dict()
    data["category"] = product.category
    return {key: data[key] for key in (*FIELDS, "attributes")}


def _attributes(record: Mapping[str, Any]) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {}
    raw = record.get("attributes")
    if isinstance(raw, str) and raw.strip():
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as error:
            raise BadRow(f"bad attributes: not JSON ({error.msg})") from None
        except RecursionError:
            raise BadRow("bad attributes: nested too deeply") from None
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            if value is not None:
                attributes[str(key)] = attribute_value(value)
    elif raw not in (None, ""):
        raise BadRow("bad attributes: expected a JSON object")
    for column, value in record.items():
        if column.startswith(ATTRIBUTE_PREFIX) and text(value):
            attributes[column[len(ATTRIBUTE_PREFIX) :]] = infer_attribute(text(value))
    return attributes


def _guarded(nested: str) -> Callable[[Mapping[str, Any]], Product]:
    """``product_from_record`` with nesting too deep for Python as a bad row, not a crash.

    ``nested`` is the reason recorded; it differs by format (a JSONL line vs a CSV cell).
    """

    def read(record: Mapping[str, Any]) -> Product:
        try:
            return product_from_record(record)
        except RecursionError:
            raise BadRow(nested) from None

    return read


def iter_jsonl(path: Path, report: ImportReport) -> Iterator[Product]:
    """Products from a JSONL file; each line is decoded on its own so one bad line costs one row."""
    admission = Admission(report)
    # Nesting just under the parser's limit is met further on, in product_from_record.
    read = _guarded(nested="malformed JSON: nested too deeply")
    unknown: set[str] = set()
    with path.open("rb") as handle:
        refuse_wide_encoding(path, handle.read(4096))
        handle.seek(0)
        for number, line in enumerate(handle, start=1):
            if number == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")
            if not line.strip():
                continue
            try:
                decoded = line.decode("utf-8")
            except UnicodeDecodeError as error:
                report.reject(path.name, number, f"wrong encoding: not UTF-8 ({error.reason})")
                continue
            try:
                record = json.loads(decoded)
            except json.JSONDecodeError as error:
                report.reject(path.name, number, f"malformed JSON: {error.msg}")
                continue
            except RecursionError:  # 1,000+ levels: this line is lost, never the import
                report.reject(path.name, number, "malformed JSON: nested too deeply")
                continue
            if not isinstance(record, dict):
                report.reject(path.name, number, "malformed JSON: not an object")
                continue
            unknown.update(key for key in record if key not in _KNOWN_KEYS)
            product = admission.admit_row(path.name, number, read, record)
            if product is not None:
                yield product
    if unknown:
        report.note(f"{path.name}: ignored unknown keys {', '.join(sorted(unknown))}")


def iter_csv(path: Path, report: ImportReport) -> Iterator[Product]:
    """Products from a generic CSV file (header row with the documented column names)."""
    admission = Admission(report)
    read = _guarded(nested="bad attributes: nested too deeply")
    header_seen = False
    for number, row in iter_csv_rows(path, report, required=("id", "title")):
        if not header_seen:
            header_seen = True
            unknown = [
                c for c in row if c not in _KNOWN_KEYS and not c.startswith(ATTRIBUTE_PREFIX)
            ]
            if unknown:
                report.note(f"{path.name}: ignored unknown columns {', '.join(unknown)}")
        product = admission.admit_row(path.name, number, read, row)
        if product is not None:
            yield product


def iter_products(path: Path, report: ImportReport) -> Iterator[Product]:
    """Products from a generic ``.jsonl``/``.ndjson`` or ``.csv`` file, chosen by its suffix."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return iter_jsonl(path, report)
    if suffix == ".csv":
        return iter_csv(path, report)
    raise CatalogFormatError(f"{path}: expected a .jsonl, .ndjson or .csv catalog file")


def write_jsonl(products: Iterable[Product], path: Path) -> int:
    """Write products as generic JSONL (UTF-8, one object per line); returns how many."""
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for product in products:
            handle.write(json.dumps(product_to_record(product), ensure_ascii=False))
            handle.write("\n")
            count += 1
    return count


def load_judgments(path: Path, report: ImportReport | None = None) -> Judgments:
    """Judgments from a ``query,product_id,gain`` CSV; unreadable rows go to ``report`` if given."""
    report = report if report is not None else ImportReport()
    judgments = Judgments()
    queries = QueryTexts()
    for number, row in iter_csv_rows(path, report, required=JUDGMENT_FIELDS):
        query_text, product_id = text(row["query"]), text(row["product_id"])
        try:
            gain = int(text(row["gain"]))
        except ValueError:
            gain = -1
        if not query_text or not product_id or gain < 0:
            report.reject(path.name, number, f"bad judgment: {row!r}")
            continue
        judgments.add(queries[query_text], product_id, gain)
        report.accepted += 1
    return judgments


def write_judgments(judgments: Judgments, path: Path) -> int:
    """Write judgments as ``query,product_id,gain`` CSV; returns the number of rows."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(JUDGMENT_FIELDS)
        for query_id, gains in judgments.qrels.items():
            query_text = judgments.queries[query_id].text
            for product_id, gain in gains.items():
                writer.writerow((query_text, product_id, gain))
                count += 1
    return count


__all__ = [
    "CatalogFormatError",
    "iter_csv",
    "iter_jsonl",
    "iter_products",
    "load_judgments",
    "product_from_record",
    "product_to_record",
    "write_jsonl",
    "write_judgments",
]
