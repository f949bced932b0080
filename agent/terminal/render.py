"""Rich rendering shared by the terminal commands: product tables, progress bars, safe lines.

Text that is not ours (catalog fields, shopper input, model replies, error messages) is never
handed to rich as a string, which rich would parse for markup (``[/]`` crashed the table,
``[link=…]`` hid a link): it goes in as a ``Text`` built by ``literal`` or ``styled``, after
``tools.text.safe_text`` has made every terminal control character visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, RenderableType
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
from rich.status import Status
from rich.table import Table
from rich.text import Text

from tools.search.results import SearchHit
from tools.text import safe_text

#: The most characters of one catalog text (a title, a brand, an id) a terminal shows: a
#: 1,000,000-character title printed 14,000 lines. The rest is cut and marked with "…".
CATALOG_TEXT_LIMIT = 300


class TerminalConsole(Console):
    """A rich console that never reads a string as markup or emoji codes.

    Every message with text that is not ours should arrive as ``literal``/``styled``; this is
    the net under the ones that do not: ``--model '[/x]'`` reached ``console.status`` in an
    f-string and ended the command with ``MarkupError``. A plain string is printed as written
    (``markup=False``), and a status line, which rich would parse whatever the console says,
    is made ``literal`` here.
    """

    def __init__(self, *, stderr: bool = False) -> None:
        super().__init__(stderr=stderr, markup=False, emoji=False)

    def status(self, status: RenderableType, **options: Any) -> Status:
        shown = literal(status) if isinstance(status, str) else status
        return super().status(shown, **options)


console = TerminalConsole()
errors = TerminalConsole(stderr=True)


class ThroughputColumn(ProgressColumn):
    """Items per second, the figure people watch while an index builds."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


def progress_bar() -> Progress:
    return Progress(
        # A description holds user text (``collect --split``, a dataset name): never markup.
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        ThroughputColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def literal(
    text: object, style: str = "", *, multiline: bool = False, limit: int | None = None
) -> Text:
    """Text that is not ours, printed as written: no markup, no emoji codes, no controls;
    with ``limit``, at most that many characters and "…" (``CATALOG_TEXT_LIMIT`` for one
    catalog field)."""
    return Text(safe_text(text, multiline=multiline, limit=limit), style=style)


def catalog_text(text: object, style: str = "") -> Text:
    """One catalog field (title, brand, id) as a terminal shows it: literal, capped at
    ``CATALOG_TEXT_LIMIT`` characters."""
    return literal(text, style, limit=CATALOG_TEXT_LIMIT)


def clipped(text: object, limit: int = CATALOG_TEXT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters and "…": a catalog field inside a ``styled``
    line (which makes it safe)."""
    value = text if isinstance(text, str) else str(text)
    return value if len(value) <= limit else value[:limit] + "…"


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
            catalog_text(hit.product.title),
            catalog_text(hit.product.brand or "—"),
            price,
            catalog_text(hit.product.id),
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
