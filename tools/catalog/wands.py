"""Wayfair WANDS importer: tab-separated ``product.csv``, ``query.csv`` and ``label.csv``.

Mapping: ``product_name`` -> title, ``product_description`` -> description,
``category hierarchy`` (``/``-separated) -> category_path, ``product_class`` -> attribute
``product_class``, ``product_features`` (``key:value|key:value``) -> attributes (keys
normalised to snake_case, numbers as float; a repeated key keeps its values joined by ``, ``;
features without a key are left out), ``rating_count``/``average_rating``/``review_count`` ->
float attributes. WANDS has no brand or price. Gains: Exact 2, Partial 1, Irrelevant 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tools.catalog.import_report import ImportReport
from tools.catalog.judgments import Judgments
from tools.catalog.product import AttributeValue, Product, normalise_attribute_key
from tools.catalog.rows import (
    Admission,
    CatalogFormatError,
    QueryTexts,
    infer_attribute,
    iter_csv_rows,
    make_product,
    split_path,
    text,
)

PRODUCTS_FILE = "product.csv"
QUERIES_FILE = "query.csv"
LABELS_FILE = "label.csv"
GAINS = {"exact": 2, "partial": 1, "irrelevant": 0}
MAX_GAIN = 2
DELIMITER = "\t"
_NUMERIC_COLUMNS = ("rating_count", "average_rating", "review_count")


def find_file(path: Path, name: str) -> Path:
    """``name`` in a WANDS checkout (``dataset/``) or folder; ``path`` itself if it is a file."""
    if path.is_file():
        return path if path.name == name else path.parent / name
    for folder in (path, path / "dataset"):
        if (folder / name).is_file():
            return folder / name
    raise CatalogFormatError(f"{path}: no WANDS {name} (looked in it and in dataset/)")


def parse_features(raw: str) -> dict[str, AttributeValue]:
    """``key:value|key : value`` pairs as attributes (see the module docstring for the rules)."""
    values: dict[str, list[str]] = {}
    for pair in raw.split("|"):
        key, separator, value = pair.partition(":")
        key, value = normalise_attribute_key(key), value.strip()
        if separator and key and value and value not in values.setdefault(key, []):
            values[key].append(value)
    return {
        key: infer_attribute(found[0]) if len(found) == 1 else ", ".join(found)
        for key, found in values.items()
    }


def product_from_record(record: dict[str, str]) -> Product:
    """One WANDS product row as a ``Product``; ``BadRow`` if it has no id or name."""
    attributes: dict[str, AttributeValue] = {}
    if text(record.get("product_class")):
        attributes["product_class"] = text(record["product_class"])
    attributes.update(parse_features(text(record.get("product_features"))))
    for column in _NUMERIC_COLUMNS:
        raw = text(record.get(column))
        if raw:
            attributes[column] = infer_attribute(raw)
    return make_product(
        id=text(record.get("product_id")),
        title=text(record.get("product_name")),
        description=text(record.get("product_description")),
        category_path=split_path(record.get("category hierarchy"), "/"),
        attributes=attributes,
    )


def iter_products(path: Path, report: ImportReport) -> Iterator[Product]:
    """Products from a WANDS folder (or its ``product.csv``)."""
    file = find_file(path, PRODUCTS_FILE)
    admission = Admission(report)
    rows = iter_csv_rows(file, report, required=("product_id", "product_name"), delimiter=DELIMITER)
    for number, record in rows:
        product = admission.admit_row(file.name, number, product_from_record, record)
        if product is not None:
            yield product


def load_judgments(path: Path, report: ImportReport | None = None) -> Judgments:
    """Exact/Partial/Irrelevant judgments from ``label.csv``, query texts from ``query.csv``."""
    report = report if report is not None else ImportReport()
    queries_file, labels_file = find_file(path, QUERIES_FILE), find_file(path, LABELS_FILE)
    texts: dict[str, str] = {}
    queries_rows = iter_csv_rows(
        queries_file, report, required=("query_id", "query"), delimiter=DELIMITER
    )
    for number, record in queries_rows:
        query_id, query_text = text(record["query_id"]), text(record["query"])
        if not query_id or not query_text:
            report.reject(queries_file.name, number, f"bad query: {record!r}")
            continue
        texts.setdefault(query_id, query_text)
    judgments = Judgments(max_gain=MAX_GAIN)
    queries = QueryTexts()
    label_rows = iter_csv_rows(
        labels_file, report, required=("query_id", "product_id", "label"), delimiter=DELIMITER
    )
    for number, record in label_rows:
        query_text = texts.get(text(record["query_id"]))
        product_id, gain = text(record["product_id"]), GAINS.get(text(record["label"]).lower())
        if query_text is None or not product_id or gain is None:
            report.reject(labels_file.name, number, f"bad judgment: {record!r}")
            continue
        judgments.add(queries[query_text], product_id, gain)
        report.accepted += 1
    return judgments
