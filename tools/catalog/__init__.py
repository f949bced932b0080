"""The product catalog: one typed product model, importers for real dataset formats, judgments."""

from tools.catalog.datasets import (
    Dataset,
    DatasetNotFound,
    import_dataset,
    load_dataset,
)
from tools.catalog.fetch import ChecksumMismatch, FetchError, fetch_chorus
from tools.catalog.import_report import ImportReport, RowError
from tools.catalog.judgments import Judgments, Query
from tools.catalog.product import AttributeValue, Product
from tools.catalog.rows import CatalogFormatError

__all__ = [
    "AttributeValue",
    "CatalogFormatError",
    "ChecksumMismatch",
    "Dataset",
    "DatasetNotFound",
    "FetchError",
    "ImportReport",
    "Judgments",
    "Product",
    "Query",
    "RowError",
    "fetch_chorus",
    "import_dataset",
    "load_dataset",
]
