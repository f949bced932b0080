"""Chorus electronics (Icecat) importer: ``N.json.zip`` product arrays and the rated query set.

Mapping: ``title`` -> title, ``name`` -> attribute ``model``, ``short_description`` ->
description, ``supplier`` -> brand, ``price`` (integer cents) -> exact ``Decimal`` (4995 -> 49.95),
``img_500x500`` (else ``img_high``) -> image_url, ``date_released`` -> updated_at, ``ean`` (list)
-> attribute ``ean`` (space-separated). Every ``attr_t_*`` / ``attr_n_*`` / ``attr_b_*`` key is
kept without its prefix as text / float / bool. When two kinds share a name (``attr_b_x`` and
``attr_n_x``), the number keeps the bare name and the others get ``_text`` / ``_flag`` suffixes.
Chorus has no category field, so ``category_path`` stays empty rather than being guessed.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator, Mapping
from decimal import Decimal
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
    iter_csv_rows,
    make_product,
    parse_datetime,
    text,
)
from tools.errors import BadInput

JUDGMENTS_FILE = "Broad_Query_Set_rated.csv"
MAX_GAIN = 3
_PRODUCT_FILE = re.compile(r"(\d+)\.json(\.zip)?$")
# attribute kind -> suffix it gets when another kind already holds the name; order = precedence
_ATTRIBUTE_KINDS = {"n": "_number", "t": "_text", "b": "_flag"}


def product_files(path: Path) -> list[Path]:
    """The product files of a Chorus folder (``1.json.zip``, ``2.json.zip``, ...) by number."""
    if path.is_file():
        return [path]
    numbered = {}
    for file in path.iterdir():
        match = _PRODUCT_FILE.fullmatch(file.name)
        if match:
            numbered[file] = int(match.group(1))
    if not numbered:
        raise CatalogFormatError(f"{path}: no Chorus product files (1.json.zip, 2.json.zip, ...)")
    return sorted(numbered, key=numbered.__getitem__)


def _read_array(path: Path) -> Any:
    if path.suffix.lower() != ".zip":
        return json.loads(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.namelist() if m.lower().endswith(".json")]
        if len(members) != 1:
            raise BadInput(f"expected one .json file inside, found {len(members)}")
        return json.loads(archive.read(members[0]))


def iter_products(path: Path, report: ImportReport) -> Iterator[Product]:
    """Products from a Chorus folder or a single ``N.json.zip`` / ``N.json`` file.

    A file that cannot be opened or parsed is one rejected row (row 0), and the import goes on.
    """
    admission = Admission(report)
    for file in product_files(path):
        try:
            items = _read_array(file)
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            report.reject(file.name, 0, f"malformed JSON file: {error}")
            continue
        if not isinstance(items, list):
            report.reject(file.name, 0, "malformed JSON file: expected one array of products")
            continue
        for number, item in enumerate(items, start=1):
            product = admission.admit_row(file.name, number, product_from_item, item)
            if product is not None:
                yield product


def product_from_item(item: Mapping[str, Any]) -> Product:
    """One Icecat JSON object as a ``Product``; ``BadRow`` with the reason if it cannot be."""
    if not isinstance(item, Mapping):
        raise BadRow("malformed JSON: not an object")
    attributes: dict[str, AttributeValue] = {}
    if text(item.get("name")):
        attributes["model"] = text(item["name"])
    ean = item.get("ean")
    ean_text = " ".join(text(e) for e in ean) if isinstance(ean, list) else text(ean)
    if ean_text.strip():
        attributes["ean"] = ean_text.strip()
    attributes.update(_attributes(item, reserved=set(attributes)))
    return make_product(
        id=text(item.get("id")),
        title=text(item.get("title")),
        description=text(item.get("short_description")),
        brand=text(item.get("supplier")),
        price=price_from_cents(item.get("price")),
        attributes=attributes,
        image_url=text(item.get("img_500x500")) or text(item.get("img_high")),
        updated_at=parse_datetime(item.get("date_released")),
    )


def price_from_cents(value: Any) -> Decimal | None:
    """Integer cents as an exact price: ``4995`` -> ``Decimal('49.95')``; ``None`` if absent."""
    if value is None or value == "":
        return None
    whole_number = (
        (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, float) and value.is_integer())
        or (isinstance(value, str) and value.strip().isdigit())
    )
    if not whole_number:
        raise BadRow(f"bad price: {value!r} (expected integer cents)")
    cents = int(value)
    if cents < 0:
        raise BadRow(f"negative price: {value!r}")
    return Decimal(cents).scaleb(-2)


def _attributes(item: Mapping[str, Any], reserved: set[str]) -> dict[str, AttributeValue]:
    entries = [
        (key[5], key[7:], value)
        for key, value in item.items()
        if len(key) > 7 and key.startswith("attr_") and key[5] in _ATTRIBUTE_KINDS and key[6] == "_"
        if value is not None and value != ""
    ]
    precedence = list(_ATTRIBUTE_KINDS)
    owner: dict[str, str] = {}
    for kind, name, _ in entries:
        if name not in owner or precedence.index(kind) < precedence.index(owner[name]):
            owner[name] = kind
    attributes: dict[str, AttributeValue] = {}
    taken = set(reserved)
    for kind, name, value in entries:
        key = name if owner[name] == kind else name + _ATTRIBUTE_KINDS[kind]
        while key in taken:
            key += _ATTRIBUTE_KINDS[kind]
        taken.add(key)
        attributes[key] = _convert(kind, value)
    return attributes


def _convert(kind: str, value: Any) -> AttributeValue:
    """``attr_n`` as float, ``attr_b`` as bool, ``attr_t`` as text; odd values are kept as text."""
    if kind == "n" and not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            return str(value)
    if kind == "b":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
    return value if isinstance(value, str) else str(value)


def judgments_file(path: Path) -> Path:
    return path / JUDGMENTS_FILE if path.is_dir() else path


def load_judgments(path: Path, report: ImportReport | None = None) -> Judgments:
    """Graded judgments (0..3, kept as gains) from ``Broad_Query_Set_rated.csv`` or its folder."""
    report = report if report is not None else ImportReport()
    source = judgments_file(path)
    judgments = Judgments(max_gain=MAX_GAIN)
    queries = QueryTexts()
    for number, row in iter_csv_rows(source, report, required=("query", "docid", "rating")):
        query_text, docid, rating = text(row["query"]), text(row["docid"]), text(row["rating"])
        if not query_text or not docid or rating not in ("0", "1", "2", "3"):
            report.reject(source.name, number, f"bad judgment: {row!r}")
            continue
        judgments.add(queries[query_text], docid, int(rating))
        report.accepted += 1
    return judgments
