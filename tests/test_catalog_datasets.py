"""Finding datasets by name (data dir, fetch cache, imports) and importing them atomically."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tools.catalog import (
    DatasetNotFound,
    ImportReport,
    Product,
    Query,
    import_dataset,
    load_dataset,
)
from tools.catalog import datasets as datasets_module
from tools.catalog.fetch import CHORUS_FILES
from tools.settings.config import Settings


@pytest.fixture()
def settings(shopagent_home: Path) -> Settings:
    return Settings(home=shopagent_home)


def test_chorus_from_the_data_dir(shared_data: Path, settings: Settings) -> None:
    dataset = load_dataset("chorus", Settings(home=settings.home, data_dir=shared_data))
    assert dataset.source == shared_data / "chorus-electronics"
    assert dataset.format == "chorus"
    judgments = dataset.judgments()
    assert len(judgments) == 135
    assert dataset.judgments() is judgments
    assert dataset.report.accepted == 19_406  # runs a full pass when none has run yet


def test_a_path_stands_for_the_data_dir(shared_data: Path, shopagent_home: Path) -> None:
    dataset = load_dataset("homedepot", shared_data)
    assert dataset.source == shared_data / "homedepot"
    first = next(iter(dataset.products()))
    assert first == Product(id="100001", title="Simpson Strong-Tie 12-Gauge Angle")


def test_products_is_a_fresh_pass_each_call(tmp_path: Path, settings: Settings) -> None:
    dataset = import_dataset(FIXTURES / "generic" / "catalog.csv", "csv", "small", settings)
    import_report = dataset.report
    assert import_report.accepted == 2 and import_report.rejected == 5
    assert [p.id for p in dataset.products()] == ["c-1", "c-2"]
    assert [p.id for p in dataset.products()] == ["c-1", "c-2"]
    assert dataset.report is not import_report
    assert dataset.report.accepted == 2 and dataset.report.rejected == 0


def _fake_fetched_chorus(settings: Settings, shared_data: Path) -> Path:
    folder = settings.cache_dir / "datasets" / "chorus"
    folder.mkdir(parents=True)
    for remote in CHORUS_FILES:
        (folder / remote.name).symlink_to(shared_data / "chorus-electronics" / remote.name)
    return folder


def test_fetch_cache_is_used_when_the_data_dir_lacks_it(
    tmp_path: Path, shared_data: Path, settings: Settings
) -> None:
    cached = _fake_fetched_chorus(settings, shared_data)
    empty_data_dir = tmp_path / "data"
    empty_data_dir.mkdir()
    with_data_dir = Settings(home=settings.home, data_dir=empty_data_dir)
    assert load_dataset("chorus", with_data_dir).source == cached
    assert load_dataset("chorus", settings).source == cached


def test_an_incomplete_folder_is_not_used(
    tmp_path: Path, shared_data: Path, settings: Settings
) -> None:
    partial = tmp_path / "data" / "chorus-electronics"
    partial.mkdir(parents=True)
    shutil.copy(shared_data / "chorus-electronics" / "1.json.zip", partial)
    with pytest.raises(DatasetNotFound) as caught:
        load_dataset("chorus", Settings(home=settings.home, data_dir=tmp_path / "data"))
    message = str(caught.value)
    assert "shopagent data fetch chorus" in message
    assert str(partial) in message


def test_unknown_names_say_how_to_import(settings: Settings) -> None:
    with pytest.raises(DatasetNotFound, match=r"shopagent data import PATH --format .*esci"):
        load_dataset("mystore", settings)
    with pytest.raises(DatasetNotFound, match="SHOPAGENT_DATA_DIR"):
        load_dataset("homedepot", settings)
    with pytest.raises(ValueError, match="bad dataset name"):
        load_dataset("../escape", settings)


def test_import_then_load_by_name(shared_data: Path, settings: Settings) -> None:
    counts: list[int] = []
    folder = shared_data / "chorus-electronics"
    imported = import_dataset(folder, "chorus", "electronics", settings, progress=counts.append)
    assert imported.report.accepted == 19_406
    assert counts[0] == 1000 and counts[-1] == 19_406
    assert imported.report.summary().startswith("19406 products imported, 0 rows skipped")
    assert "3668 judgments for 135 queries" in imported.report.summary()

    dataset = load_dataset("electronics", settings)
    assert dataset.format == "chorus"
    products = {p.id: p for p in dataset.products()}
    assert len(products) == 19_406
    assert products["3920564"].price == Decimal("49.95")
    assert products["3920564"].brand == "Xerox"
    judgments = dataset.judgments()
    assert len(judgments) == 135
    assert len(judgments.with_positive()) == 116
    assert judgments.max_gain == 3
    manifest = json.loads((settings.home / "datasets" / "electronics" / "dataset.json").read_text())
    assert manifest["products"] == 19_406 and manifest["judgments"] == 3_668


def test_generic_import_with_judgments_and_bad_rows(settings: Settings) -> None:
    generic = FIXTURES / "generic"
    imported = import_dataset(
        generic / "catalog.jsonl",
        "jsonl",
        "mice",
        settings,
        judgments_path=generic / "judgments.csv",
    )
    assert imported.report.accepted == 3 and imported.report.rejected == 10
    assert "4 judgments for 2 queries (1 judgment rows skipped" in imported.report.summary()
    manifest = json.loads((settings.home / "datasets" / "mice" / "dataset.json").read_text())
    assert manifest["rejected_rows"] == 10
    assert "catalog.jsonl:5: bad price: '12,99'" in manifest["errors"]
    assert manifest["judgment_errors"][0].startswith("judgments.csv:6: bad judgment")

    dataset = load_dataset("mice", settings)
    assert [p.id for p in dataset.products()] == ["m-1", "2", "m-7"]
    assert dataset.judgments().gains(Query.from_text("wireless mouse").id) == {"m-1": 3, "2": 1}

    # the stored folder is itself a generic-format source
    again = import_dataset(settings.home / "datasets" / "mice", "jsonl", "mice-copy", settings)
    assert again.report.accepted == 3 and again.report.rejected == 0
    assert len(again.judgments()) == 2


def test_esci_and_wands_import(settings: Settings) -> None:
    esci = import_dataset(FIXTURES / "esci", "esci", "esci-es", settings, locale="es")
    assert esci.report.accepted == 1 and len(esci.judgments()) == 1
    wands = import_dataset(FIXTURES / "wands", "wands", "wands", settings)
    assert wands.report.accepted == 3 and len(wands.judgments()) == 3
    assert load_dataset("wands", settings).judgments().max_gain == 2


def test_bad_arguments_are_clear(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        import_dataset(FIXTURES / "generic" / "catalog.csv", "xml", "x", settings)
    with pytest.raises(ValueError, match="only read for jsonl and csv"):
        import_dataset(FIXTURES / "wands", "wands", "x", settings, judgments_path=tmp_path)
    with pytest.raises(ValueError, match="no such file"):
        import_dataset(tmp_path / "missing.jsonl", "jsonl", "x", settings)
    assert not (settings.home / "datasets" / "x").exists()


def test_a_failed_import_leaves_the_previous_version(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_dataset(FIXTURES / "generic" / "catalog.csv", "csv", "shop", settings)

    def crashing(path: Path, report: ImportReport) -> Iterator[Product]:
        yield Product(id="new-1", title="Half-written")
        raise OSError("disk unplugged")

    real_readers = datasets_module.source_readers
    monkeypatch.setattr(
        datasets_module,
        "source_readers",
        lambda *args: (crashing, real_readers(*args)[1]),
    )
    with pytest.raises(OSError, match="disk unplugged"):
        import_dataset(FIXTURES / "generic" / "catalog.jsonl", "jsonl", "shop", settings)

    root = settings.home / "datasets"
    assert sorted(p.name for p in root.iterdir()) == ["shop"]  # no temporary folder left
    assert [p.id for p in load_dataset("shop", settings).products()] == ["c-1", "c-2"]


def test_reimport_replaces_the_whole_dataset(settings: Settings) -> None:
    import_dataset(FIXTURES / "generic" / "catalog.csv", "csv", "shop", settings)
    import_dataset(FIXTURES / "generic" / "latin1.csv", "csv", "shop", settings)
    assert [p.id for p in load_dataset("shop", settings).products()] == ["l-1", "l-2"]
    assert sorted(p.name for p in (settings.home / "datasets").iterdir()) == ["shop"]
