"""One way to get a dataset by name, wherever its files are: ``load_dataset``, ``import_dataset``.

``load_dataset("chorus" | "homedepot", settings)`` looks in ``Settings.data_dir`` (subfolders
``chorus-electronics/`` and ``homedepot/``), then the fetch cache (``cache_dir/datasets/NAME``),
then imported datasets. Any other name is an imported dataset: ``import_dataset`` reads local
files in a supported format and stores a normalised copy (generic JSONL catalog, judgments CSV,
``dataset.json`` manifest) under ``Settings.home/datasets/NAME``. The copy is built in a
temporary folder and moved into place with ``os.replace``, so a crash never leaves half of it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from tools.atomic_write import replace_directory
from tools.catalog import chorus, esci, generic, homedepot, wands
from tools.catalog.fetch import CHORUS_FILES
from tools.catalog.import_report import ImportReport
from tools.catalog.judgments import Judgments
from tools.catalog.product import Product
from tools.catalog.rows import CatalogFormatError
from tools.errors import BadInput, NotFound
from tools.names import check_name
from tools.settings.config import Settings, load_settings

CATALOG_FILE = "catalog.jsonl"
JUDGMENTS_FILE = "judgments.csv"
MANIFEST_FILE = "dataset.json"
FORMATS = ("chorus", "homedepot", "jsonl", "csv", "esci", "wands")
PROGRESS_EVERY = 1000
_MAX_LISTED_ERRORS = 1000

ProductReader = Callable[[Path, ImportReport], Iterator[Product]]
JudgmentsReader = Callable[[Path, ImportReport], Judgments]
ImportProgress = Callable[[int], None]
"""``progress(products written so far)``, every ``PROGRESS_EVERY`` products and at the end."""


class DatasetNotFound(NotFound):
    """No files for a dataset name; the message says how to get them."""


@dataclass(frozen=True, slots=True)
class BuiltinDataset:
    folder: str
    files: tuple[str, ...]
    read_products: ProductReader
    read_judgments: JudgmentsReader
    how_to_get: str
    #: The files of ``files`` that hold products (judgments do not change an index).
    catalog_files: tuple[str, ...] = ()


BUILTIN = {
    "chorus": BuiltinDataset(
        "chorus-electronics",
        tuple(remote.name for remote in CHORUS_FILES),
        chorus.iter_products,
        chorus.load_judgments,
        "run `shopagent data fetch chorus` (or `shopagent data import PATH --format chorus`, "
        "or set SHOPAGENT_DATA_DIR to a folder with chorus-electronics/)",
        tuple(remote.name for remote in CHORUS_FILES if remote.name.endswith(".json.zip")),
    ),
    "homedepot": BuiltinDataset(
        "homedepot",
        (homedepot.PRODUCTS_FILE, homedepot.JUDGMENTS_FILE),
        homedepot.iter_products,
        homedepot.load_judgments,
        "set SHOPAGENT_DATA_DIR to a folder with homedepot/products.csv and judgments.csv, "
        "or run `shopagent data import PATH --format homedepot`",
        (homedepot.PRODUCTS_FILE,),
    ),
}


@dataclass(slots=True)
class Dataset:
    """A named catalog with its judgments; ``products()`` streams a fresh pass on every call."""

    name: str
    format: str
    source: Path
    read_products: ProductReader = field(repr=False)
    read_judgments: JudgmentsReader = field(repr=False)
    max_gain: int | None = None
    #: The files the catalog is read from (``source``-relative names): what ``catalog_identity``
    #: stats, so an index can tell that the catalog it holds has been replaced since.
    catalog_files: tuple[str, ...] = ()
    _report: ImportReport | None = field(default=None, repr=False)
    _judgments: Judgments | None = field(default=None, repr=False)

    def products(self) -> Iterator[Product]:
        """All products, read from the files again; a finished pass updates ``report``."""
        report = ImportReport()
        yield from self.read_products(self.source, report)
        self._report = report

    @property
    def report(self) -> ImportReport:
        """The ``ImportReport`` of the last full pass (running one first if there was none)."""
        if self._report is None:
            for _ in self.products():
                pass
        assert self._report is not None
        return self._report

    def judgments(self) -> Judgments:
        """The dataset's judgments, read once and cached (treat them as read-only)."""
        if self._judgments is None:
            judgments = self.read_judgments(self.source, ImportReport())
            if self.max_gain is not None:
                judgments.max_gain = max(judgments.max_gain, self.max_gain)
            self._judgments = judgments
        return self._judgments


def resolve_settings(settings_or_data_dir: Settings | str | Path | None) -> Settings:
    """Settings as given, or the loaded settings with ``data_dir`` replaced by a path."""
    if isinstance(settings_or_data_dir, Settings):
        return settings_or_data_dir
    settings = load_settings()
    if settings_or_data_dir is None:
        return settings
    return replace(settings, data_dir=Path(settings_or_data_dir).expanduser())


def datasets_dir(settings: Settings) -> Path:
    """Where imported datasets live: ``<home>/datasets``."""
    return settings.home / "datasets"


def cache_folder(settings: Settings, name: str) -> Path:
    """Where fetched files of a dataset live: ``<cache_dir>/datasets/<name>``."""
    return settings.cache_dir / "datasets" / name


def load_dataset(name: str, settings_or_data_dir: Settings | str | Path | None = None) -> Dataset:
    """The dataset called ``name``; raises ``DatasetNotFound`` saying how to get it."""
    settings = resolve_settings(settings_or_data_dir)
    _check_name(name)
    looked: list[Path] = []
    builtin = BUILTIN.get(name)
    if builtin is not None:
        candidates = [settings.data_dir / builtin.folder] if settings.data_dir else []
        candidates.append(cache_folder(settings, name))
        for folder in candidates:
            if all((folder / file).is_file() for file in builtin.files):
                return Dataset(
                    name,
                    name,
                    folder,
                    builtin.read_products,
                    builtin.read_judgments,
                    catalog_files=builtin.catalog_files,
                )
            looked.append(folder)
    stored = datasets_dir(settings) / name
    if (stored / MANIFEST_FILE).is_file():
        return _stored_dataset(stored)
    looked.append(stored)
    how = (
        builtin.how_to_get
        if builtin
        else f"run `shopagent data import PATH --format {'|'.join(FORMATS)} --name {name}`"
    )
    where = ", ".join(str(path) for path in looked)
    raise DatasetNotFound(f"dataset {name!r} not found (looked in {where}): {how}")


def _stored_dataset(folder: Path) -> Dataset:
    manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    return Dataset(
        name=folder.name,
        format=str(manifest.get("format", "jsonl")),
        source=folder,
        read_products=lambda path, report: generic.iter_jsonl(path / CATALOG_FILE, report),
        read_judgments=lambda path, report: generic.load_judgments(path / JUDGMENTS_FILE, report),
        max_gain=manifest.get("max_gain"),
        catalog_files=(CATALOG_FILE, MANIFEST_FILE),
    )


def catalog_identity(dataset: Dataset) -> str:
    """A fingerprint of the catalog files as they are on disk now: name, size and modification
    time of each (a stat, not a read, so checking it costs nothing on a chat start).

    An index records the identity it was built from (``tools.stores.write_manifest``); a
    re-import replaces the files (new times), and a catalog edited in place changes them, so a
    differing identity means the index may hold products the catalog no longer has.
    """
    digest = hashlib.sha256(f"{dataset.name}\n".encode())
    for name in dataset.catalog_files:
        try:
            stat = (dataset.source / name).stat()
        except OSError:
            digest.update(f"{name} missing\n".encode())
            continue
        digest.update(f"{name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def catalog_modified(dataset: Dataset) -> datetime | None:
    """When the newest of the catalog's files was last written (None when none exists)."""
    times = [
        (dataset.source / name).stat().st_mtime
        for name in dataset.catalog_files
        if (dataset.source / name).exists()
    ]
    return datetime.fromtimestamp(max(times), UTC) if times else None


def source_readers(
    format: str, judgments_path: Path | None = None, locale: str = esci.DEFAULT_LOCALE
) -> tuple[ProductReader, JudgmentsReader]:
    """The product and judgment readers for a source format (``FORMATS``)."""
    if judgments_path is not None and format not in ("jsonl", "csv"):
        raise BadInput(f"a separate judgments file is only read for jsonl and csv, not {format}")
    if format == "chorus":
        return chorus.iter_products, chorus.load_judgments
    if format == "homedepot":
        return homedepot.iter_products, homedepot.load_judgments
    if format == "esci":
        return partial(esci.iter_products, locale=locale), partial(
            esci.load_judgments, locale=locale
        )
    if format == "wands":
        return wands.iter_products, wands.load_judgments
    if format in ("jsonl", "csv"):

        def read_products(path: Path, report: ImportReport) -> Iterator[Product]:
            # --format wins over the file's extension: a .txt of JSON lines is read as jsonl.
            catalog = path / f"catalog.{format}" if path.is_dir() else path
            if not catalog.is_file():
                raise CatalogFormatError(
                    f"{path}: no catalog.{format} in this folder (pass the catalog file itself)"
                )
            reader = generic.iter_jsonl if format == "jsonl" else generic.iter_csv
            return reader(catalog, report)

        def read_judgments(path: Path, report: ImportReport) -> Judgments:
            if judgments_path is not None:
                return generic.load_judgments(judgments_path, report)
            beside = path / JUDGMENTS_FILE
            if path.is_dir() and beside.is_file():
                return generic.load_judgments(beside, report)
            return Judgments()

        return read_products, read_judgments
    raise BadInput(f"unknown format {format!r}: expected one of {', '.join(FORMATS)}")


def import_dataset(
    path: str | Path,
    format: str,
    name: str,
    settings: Settings | None = None,
    *,
    judgments_path: str | Path | None = None,
    progress: ImportProgress | None = None,
    locale: str = esci.DEFAULT_LOCALE,
) -> Dataset:
    """Read local files in ``format`` and store them as dataset ``name`` for ``load_dataset``.

    Returns the stored dataset; its ``report`` is this import's (skipped rows, notes, and a note
    on the judgments read). ``judgments_path`` is for the generic formats (a
    ``query,product_id,gain`` CSV; a folder source may hold ``judgments.csv`` instead);
    ``locale`` is for ESCI. An existing dataset of that name is replaced whole.
    """
    settings = settings or load_settings()
    _check_name(name)
    source = Path(path).expanduser()
    if not source.exists():
        raise CatalogFormatError(f"{source}: no such file or folder")
    extra = Path(judgments_path).expanduser() if judgments_path else None
    read_products, read_judgments = source_readers(format, extra, locale)
    root = datasets_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    report, judgments_report = ImportReport(), ImportReport()
    building = root / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    building.mkdir()
    try:
        products = _counted(read_products(source, report), progress)
        try:
            count = generic.write_jsonl(products, building / CATALOG_FILE)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as error:
            missing = error.filename or source
            raise CatalogFormatError(
                f"{source}: not a {format} catalog ({missing} is missing or not a file)"
            ) from None
        if count == 0:
            raise CatalogFormatError(f"{source}: no products to import ({_why_empty(report)})")
        judgments = read_judgments(source, judgments_report)
        generic.write_judgments(judgments, building / JUDGMENTS_FILE)
        report.note(_judgments_note(judgments, judgments_report))
        manifest = _manifest(name, format, source, count, judgments, report, judgments_report)
        (building / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        replace_directory(building, root / name)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    dataset = _stored_dataset(root / name)
    dataset._report = report
    return dataset


def _why_empty(report: ImportReport) -> str:
    """An empty catalog is an error: say whether the file had no rows or only bad ones."""
    if not report.errors:
        return "the file has no product rows"
    return f"all {report.rejected} rows were skipped, e.g. {report.errors[0]}"


def _judgments_note(judgments: Judgments, report: ImportReport) -> str:
    note = f"{report.accepted} judgments for {len(judgments)} queries"
    if report.rejected:
        note += f" ({report.rejected} judgment rows skipped, e.g. {report.errors[0]})"
    return note


def _counted(products: Iterable[Product], progress: ImportProgress | None) -> Iterator[Product]:
    count = 0
    for count, product in enumerate(products, start=1):
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress(count)
        yield product
    if progress is not None:
        progress(count)


def _manifest(
    name: str,
    format: str,
    source: Path,
    products: int,
    judgments: Judgments,
    report: ImportReport,
    judgments_report: ImportReport,
) -> dict[str, Any]:
    return {
        "name": name,
        "format": format,
        "source": str(source.resolve()),
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "products": products,
        "queries": len(judgments),
        "judgments": sum(len(gains) for gains in judgments.qrels.values()),
        "max_gain": judgments.max_gain,
        "summary": report.summary(),
        "rejected_rows": report.rejected,
        "errors": [str(error) for error in report.errors[:_MAX_LISTED_ERRORS]],
        "judgment_errors": [str(e) for e in judgments_report.errors[:_MAX_LISTED_ERRORS]],
    }


def _check_name(name: str) -> None:
    check_name("dataset", name)
    if ".." in name:
        raise BadInput(f"bad dataset name {name!r}: '..' is not allowed in a dataset name")
