"""Rich rendering shared by the terminal commands: product tables and throughput progress bars."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from tools.search.results import SearchHit

console = Console()
errors = Console(stderr=True)


class ThroughputColumn(ProgressColumn):
    """Items per second, the figure people watch while an index builds."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        ThroughputColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def products_table(hits: Sequence[SearchHit], title: str = "") -> Table:
    """Title, brand, price and id: what a shopper needs to pick, and what /buy N refers to."""
    table = Table(title=title or None, show_lines=False, header_style="bold")
    table.add_column("#", justify="right", style="dim")
    table.add_column("title", overflow="fold", max_width=70)
    table.add_column("brand")
    table.add_column("price", justify="right")
    table.add_column("id", style="dim")
    table.add_column("score", justify="right", style="dim")
    for hit in hits:
        price = "—" if hit.product.price is None else f"{hit.product.price:,.2f}"
        table.add_row(
            str(hit.rank),
            hit.product.title,
            hit.product.brand or "—",
            price,
            hit.product.id,
            f"{hit.score:.3f}",
        )
    return table


def error_line(message: str) -> None:
    """Every expected failure is one readable line on stderr."""
    first = " ".join(str(message).split()) or "unknown error"
    errors.print(f"[bold red]error:[/] {first}", highlight=False, soft_wrap=True)
