"""Rich rendering shared by the terminal commands: product tables, progress bars, safe lines.

Text that is not ours (catalog fields, shopper input, model replies, error messages) is never
handed to rich as a string, which rich would parse for markup (``[/]`` crashed the table,
``[link=…]`` hid a link): it goes in as a ``Text`` built by ``literal`` or ``styled``, after
``tools.text.safe_text`` has made every terminal control character visible.
"""

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
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from tools.search.results import SearchHit
from tools.text import safe_text

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
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def literal(text: object, style: str = "", *, multiline: bool = False) -> Text:
    """Text that is not ours, printed as written: no markup, no emoji codes, no controls."""
    return Text(safe_text(text, multiline=multiline), style=style)


def styled(*parts: str | tuple[str, str], multiline: bool = False) -> Text:
    """One line from plain parts and ``(text, style)`` parts, every part taken literally.

    The styles are ours; the text never is interpreted, so a caller can mix a label with a
    catalog title or an error message without escaping anything.
    """
    line = Text()
    for part in parts:
        text, style = (part, "") if isinstance(part, str) else part
        line.append(safe_text(text, multiline=multiline), style=style or None)
    return line


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
            literal(hit.product.title),
            literal(hit.product.brand or "—"),
            price,
            literal(hit.product.id),
            f"{hit.score:.3f}",
        )
    return table


def warning_line(message: str) -> None:
    """A condition the user should act on that does not stop the command: one line on stderr."""
    first = safe_text(" ".join(str(message).split()))
    errors.print(styled(("warning:", "bold yellow"), " ", first), highlight=False, soft_wrap=True)


def error_line(message: str) -> None:
    """Every expected failure is one readable line on stderr."""
    first = safe_text(" ".join(str(message).split())) or "unknown error"
    errors.print(styled(("error:", "bold red"), " ", first), highlight=False, soft_wrap=True)
