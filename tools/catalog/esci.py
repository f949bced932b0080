"""Amazon Shopping Queries (ESCI) importer: ``shopping_queries_dataset_{products,examples}``.

Reads the published parquet files (via pyarrow, in batches) or CSV files with the same columns.
Products are keyed by (locale, product_id) in ESCI, so one import takes one locale (default
``us``); rows of other locales are counted in a report note, not rejected. Mapping:
``product_title`` -> title, ``product_description`` (else the bullet points) -> description,
``product_brand`` -> brand, ``product_color`` -> attribute ``color``, bullet points -> attribute
``bullet_points`` (when the description is present), locale -> attribute ``locale``.
Gains from ``esci_label``: Exact 3, Substitute 2, Complement 1, Irrelevant 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tools.catalog.import_report import ImportReport
from tools.catalog.judgments import Judgments
from tools.catalog.product import AttributeValue, Product
from tools.catalog.rows import (
    Admission,
    CatalogFormatError,
    QueryTexts,
    iter_csv_rows,
    make_product,
    text,
)

PRODUCTS_STEM = "shopping_queries_dataset_products"
EXAMPLES_STEM = "shopping_queries_dataset_examples"
DEFAULT_LOCALE = "us"
GAINS = {"E": 3, "S": 2, "C": 1, "I": 0}
MAX_GAIN = 3
_BATCH_ROWS = 16_384


def find_file(path: Path, stem: str) -> Path:
    """``stem.parquet`` (preferred) or ``stem.csv`` in ``path`` or ``shopping_queries_dataset/``."""
    if path.is_file():
        return path
    for folder in (path, path / "shopping_queries_dataset"):
        for suffix in (".parquet", ".csv"):
            candidate = folder / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    raise CatalogFormatError(f"{path}: no {stem}.parquet or {stem}.csv")


def iter_records(
    file: Path, report: ImportReport, required: Sequence[str]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number, record)`` from a parquet file (streamed in batches) or a CSV file."""
    if file.suffix.lower() != ".parquet":
        yield from iter_csv_rows(file, report, required=required)
        return
    import pyarrow.parquet as pq  # imported here: only ESCI parquet files need it

    parquet = pq.ParquetFile(file)
    columns = parquet.schema_arrow.names
    missing = [column for column in required if column not in columns]
    if missing:
        raise CatalogFormatError(f"{file}: missing column(s) {', '.join(missing)}")
    number = 0
    for batch in parquet.iter_batches(batch_size=_BATCH_ROWS):
        for record in batch.to_pylist():
            number += 1
            yield number, record


def product_from_record(record: dict[str, Any]) -> Product:
    """One ESCI product row as a ``Product``; ``BadRow`` if it has no id or title."""
    description = text(record.get("product_description"))
    bullets = text(record.get("product_bullet_point"))
    attributes: dict[str, AttributeValue] = {}
    if text(record.get("product_color")):
        attributes["color"] = text(record["product_color"])
    if description and bullets:
        attributes["bullet_points"] = bullets
    if text(record.get("product_locale")):
        attributes["locale"] = text(record["product_locale"])
    return make_product(
        id=text(record.get("product_id")),
        title=text(record.get("product_title")),
        description=description or bullets,
        brand=text(record.get("product_brand")),
        attributes=attributes,
    )


def iter_products(
    path: Path, report: ImportReport, locale: str = DEFAULT_LOCALE
) -> Iterator[Product]:
    """Products of one locale from an ESCI folder or products file (parquet or CSV)."""
    file = find_file(path, PRODUCTS_STEM)
    admission = Admission(report)
    other_locales = 0
    for number, record in iter_records(file, report, ("product_id", "product_title")):
        if text(record.get("product_locale") or locale) != locale:
            other_locales += 1
            continue
        product = admission.admit_row(file.name, number, product_from_record, record)
        if product is not None:
            yield product
    if other_locales:
        report.note(f"{other_locales} {file.name} rows of other locales skipped (locale {locale})")


def load_judgments(
    path: Path,
    report: ImportReport | None = None,
    locale: str = DEFAULT_LOCALE,
    split: str | None = None,
) -> Judgments:
    """E/S/C/I judgments of one locale (and, if given, one ``split``: ``train`` or ``test``)."""
    report = report if report is not None else ImportReport()
    file = find_file(path, EXAMPLES_STEM)
    judgments = Judgments(max_gain=MAX_GAIN)
    queries = QueryTexts()
    skipped = 0
    for number, record in iter_records(file, report, ("query", "product_id", "esci_label")):
        if text(record.get("product_locale") or locale) != locale or (
            split is not None and text(record.get("split")) != split
        ):
            skipped += 1
            continue
        query_text, product_id = text(record.get("query")), text(record.get("product_id"))
        gain = GAINS.get(text(record.get("esci_label")).upper())
        if not query_text or not product_id or gain is None:
            report.reject(file.name, number, f"bad judgment: {record!r}")
            continue
        judgments.add(queries[query_text], product_id, gain)
        report.accepted += 1
    if skipped:
        report.note(f"{skipped} {file.name} rows of other locales or splits skipped")
    return judgments
