"""The ``shopagent`` command line: data, indexes, search, model, chat, export, eval and training.

Each command is thin: it parses flags into settings and calls the library. Heavy imports
(chromadb, torch, transformers) happen inside commands so ``shopagent --help`` stays fast.
"""

from __future__ import annotations

import sys
import time
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from agent.config import load_settings
from agent.terminal import console, error_line, products_table, progress_bar

app = typer.Typer(
    help="shopagent: a shopping assistant that learns to search.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Fetch public datasets and import local catalog files.", no_args_is_help=True)
app.add_typer(data_app, name="data")

DatasetOption = Annotated[str, typer.Option("--dataset", "-d", help="Dataset name (chorus, homedepot or an imported name).")]


class SearchTool(StrEnum):
    lexical = "lexical"
    concepts = "concepts"
    dense = "dense"
    direct = "direct"
    hybrid = "hybrid"


class ImportFormat(StrEnum):
    chorus = "chorus"
    homedepot = "homedepot"
    jsonl = "jsonl"
    csv = "csv"
    esci = "esci"
    wands = "wands"


# -- data ------------------------------------------------------------------------------------


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="Public dataset to download: chorus.")],
) -> None:
    """Download a public dataset (checksums verified) into the cache."""
    from tools.catalog.fetch import fetch_chorus

    if name != "chorus":
        raise ValueError(f"no public download is known for {name!r}; use `shopagent data import`")
    settings = load_settings()
    with progress_bar() as bar:
        task = bar.add_task("chorus", total=None)
        path = fetch_chorus(settings.cache_dir / "datasets" / "chorus", progress=lambda n: bar.advance(task, n))
    console.print(f"chorus ready at {path}")


@data_app.command("import")
def data_import(
    path: Annotated[Path, typer.Argument(help="File or folder in the given format.")],
    format: Annotated[ImportFormat, typer.Option("--format", "-f", help="Layout of the files.")],
    name: Annotated[str | None, typer.Option(help="Dataset name to store it as (default: the format).")] = None,
) -> None:
    """Import local catalog (and judgment) files; bad rows are counted and reported, never lost."""
    from tools.catalog.datasets import import_dataset

    settings = load_settings()
    dataset = import_dataset(path, format.value, name or format.value, settings)
    report = dataset.report
    console.print(f"{dataset.name}: {report.summary()}")
    for error in report.errors[:20]:
        console.print(f"  [yellow]skipped[/] {error}", highlight=False)
    if report.rejected > 20:
        console.print(f"  … and {report.rejected - 20} more")


# -- index and search ------------------------------------------------------------------------


@app.command()
def index(
    dataset: DatasetOption = "chorus",
    backend: Annotated[str, typer.Option(help="Lexical backend: auto, tantivy or elasticsearch.")] = "auto",
    concepts: Annotated[bool, typer.Option(help="Also build the Chroma concept index.")] = True,
) -> None:
    """Build the lexical and concept indexes of a dataset (progress and throughput shown)."""
    from tools.catalog.datasets import load_dataset
    from tools.stores import lexical_backend_name, open_concepts, open_lexical, write_manifest

    settings = load_settings({"lexical_backend": backend})
    source = load_dataset(dataset, settings)
    products = list(source.products())
    console.print(f"{dataset}: {source.report.summary()}")
    timings: dict[str, float] = {}
    with progress_bar() as bar:
        targets = [(lexical_backend_name(settings), lambda: open_lexical(settings, dataset, create=True))]
        if concepts:
            targets.append(("chroma concepts", lambda: open_concepts(settings, dataset, create=True)))
        for label, opener in targets:
            task = bar.add_task(label, total=len(products))
            started = time.perf_counter()
            opener().index(products, progress=lambda n, task=task: bar.advance(task, n))
            timings[label] = time.perf_counter() - started
    for label, seconds in timings.items():
        console.print(f"{label}: {len(products):,} products in {seconds:.1f} s ({len(products) / seconds:,.0f}/s)")
    write_manifest(
        settings,
        dataset,
        products=len(products),
        rejected_rows=source.report.rejected,
        lexical_backend=lexical_backend_name(settings),
        concepts=concepts,
    )


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="What to search for; with --tool concepts/direct, comma-separated concepts or titles.")],
    dataset: DatasetOption = "chorus",
    tool: Annotated[SearchTool, typer.Option(help="Retrieval strategy.")] = SearchTool.lexical,
    brand: Annotated[list[str] | None, typer.Option(help="Only these brands (repeatable).")] = None,
    category: Annotated[str | None, typer.Option(help="Only this category (any level of the path).")] = None,
    min_price: Annotated[str | None, typer.Option(help="Lowest price.")] = None,
    max_price: Annotated[str | None, typer.Option(help="Highest price.")] = None,
    attribute: Annotated[list[str] | None, typer.Option(help="KEY=VALUE attribute equality (repeatable).")] = None,
    size: Annotated[int, typer.Option(min=1, max=100)] = 10,
    fuzzy: Annotated[bool, typer.Option(help="Tolerate typos (lexical).")] = False,
) -> None:
    """Search a dataset's indexes and show the products as a table."""
    from tools.search.request import SearchFilters, SearchRequest
    from tools.search_tools import SearchToolbox

    filters = SearchFilters(
        brands=tuple(brand or ()),
        category=category,
        min_price=_price(min_price, "--min-price"),
        max_price=_price(max_price, "--max-price"),
        attributes=dict(_key_value(item) for item in attribute or ()),
    )
    toolbox = SearchToolbox(load_settings(), dataset)
    request = SearchRequest(text, filters=filters, size=size, fuzzy=fuzzy)
    results = toolbox.run(tool.value, request)
    console.print(products_table(results.hits, title=f"{tool.value} · {results.backend} · {results.took_ms:.1f} ms"))
    if not results.hits:
        console.print("no products matched")


def _price(value: str | None, flag: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value.replace(",", "").lstrip("$€£"))
    except InvalidOperation:
        raise ValueError(f"{flag} must be a number, got {value!r}") from None


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--attribute must look like KEY=VALUE, got {item!r}")
    return key.strip(), value.strip()


# -- entry point -----------------------------------------------------------------------------


def main() -> None:
    """Expected failures print one line and exit 1; nothing half-done is left behind."""
    from tools.search.backend import SearchError

    try:
        app()
    except (SearchError, ValueError, FileNotFoundError, PermissionError, LookupError) as error:
        error_line(str(error))
        sys.exit(1)
    except KeyboardInterrupt:
        error_line("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
