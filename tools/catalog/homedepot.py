"""Home Depot search relevance importer: ``products.csv`` and ``judgments.csv`` (Kaggle 2016).

``products.csv`` has ``product_uid,product_title`` (titles only). ``judgments.csv`` has
``id,product_uid,product_title,search_term,relevance``, where relevance is the mean of several
raters on a 1..3 scale (2.33, 2.67, ...). Each file is read as UTF-8 if it decodes, else as
latin-1 (the original Kaggle files are latin-1); the report notes which.

Gains are binary: a judged product is relevant (gain 1) when its mean relevance is at least
``RELEVANT_AT`` = 2.33, i.e. at least two of three raters said "relevant" or better; below that
it is gain 0. Products judged in ``judgments.csv`` but absent from ``products.csv`` are added
with the title given there, and the report counts them.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path

from tools.catalog.import_report import ImportReport
from tools.catalog.judgments import Judgments
from tools.catalog.product import Product
from tools.catalog.rows import Admission, BadRow, QueryTexts, iter_csv_rows, make_product, text

PRODUCTS_FILE = "products.csv"
JUDGMENTS_FILE = "judgments.csv"
RELEVANT_AT = Decimal("2.33")
_JUDGMENT_COLUMNS = ("product_uid", "product_title", "search_term", "relevance")
_LOWEST, _HIGHEST = Decimal(1), Decimal(3)


def _folder(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def iter_products(path: Path, report: ImportReport) -> Iterator[Product]:
    """Products from a Home Depot folder (or its ``products.csv``), then judged-only products."""
    folder = _folder(path)
    products_file = path if path.is_file() else folder / PRODUCTS_FILE
    admission = Admission(report)
    for number, row in iter_csv_rows(
        products_file, report, required=("product_uid", "product_title")
    ):
        product = admission.admit_row(products_file.name, number, _product_from_row, row)
        if product is not None:
            yield product

    judgments_file = folder / JUDGMENTS_FILE
    if not judgments_file.is_file():
        return
    added = 0
    # Judgment rows are not product rows: only a row that introduces an unseen product counts,
    # and malformed judgment rows are reported by ``load_judgments``, not here.
    judgment_rows = ImportReport()
    for number, row in iter_csv_rows(judgments_file, judgment_rows, required=_JUDGMENT_COLUMNS):
        uid = text(row["product_uid"])
        if not uid or uid in admission.seen:
            continue
        try:
            product = _product_from_row(row)
        except BadRow as error:
            admission.seen.add(uid)  # its later judgment rows would repeat the same rejection
            report.reject(judgments_file.name, number, str(error))
            continue
        if admission.admit(product, judgments_file.name, number):
            added += 1
            yield product
    report.notes.extend(judgment_rows.notes)
    report.note(f"{added} products added from {JUDGMENTS_FILE} titles (not in {PRODUCTS_FILE})")


def _product_from_row(row: dict[str, str]) -> Product:
    """A product from a row of either file: both name the id and title columns alike."""
    return make_product(id=text(row["product_uid"]), title=text(row["product_title"]))


def _relevance(raw: str) -> Decimal | None:
    """A mean rating in 1..3, or ``None`` when the cell is not one."""
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    return value if value.is_finite() and _LOWEST <= value <= _HIGHEST else None


def gain_for(relevance: Decimal, threshold: Decimal = RELEVANT_AT) -> int:
    """Binary gain for a mean rating: 1 if ``relevance >= threshold`` else 0."""
    return 1 if relevance >= threshold else 0


def load_judgments(
    path: Path, report: ImportReport | None = None, threshold: Decimal = RELEVANT_AT
) -> Judgments:
    """Binary judgments (see ``RELEVANT_AT``) from a Home Depot folder or its ``judgments.csv``."""
    report = report if report is not None else ImportReport()
    source = path if path.is_file() else path / JUDGMENTS_FILE
    judgments = Judgments(max_gain=1)
    queries = QueryTexts()
    for number, row in iter_csv_rows(source, report, required=_JUDGMENT_COLUMNS):
        query_text, uid = text(row["search_term"]), text(row["product_uid"])
        relevance = _relevance(text(row["relevance"]))
        if not query_text or not uid or relevance is None:
            report.reject(source.name, number, f"bad judgment: {row!r}")
            continue
        judgments.add(queries[query_text], uid, gain_for(relevance, threshold))
        report.accepted += 1
    return judgments
