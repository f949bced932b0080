"""How eval runs read: one run's markdown, the summary of several, and their terminal table.

``compare`` and ``drift`` render their own results with ``markdown_table`` and ``number`` from
here, so this module needs only the records and never imports back into them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

from evals.records import METRIC_NAMES, EvalReport

WORST_SHOWN = 10


def number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def validity(report: EvalReport) -> str:
    """The valid share of tool calls (repaired share in brackets), or n/a without a model."""
    if report.tool_calls is None:
        return "n/a"
    return f"{report.tool_calls['valid']:.1%} (+{report.tool_calls['repaired']:.1%} repaired)"


def terminal_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    text_columns: Sequence[str] = ("metric",),
) -> MetricTable:
    """The terminal twin of ``markdown_table``: text columns left, numbers right-aligned."""
    return MetricTable(title, tuple(headers), tuple(tuple(r) for r in rows), tuple(text_columns))


@dataclass(frozen=True, slots=True)
class MetricTable:
    """A table whose cells are never cut, at any width: in a pipe, a file, an 80-column terminal.

    A plain rich ``Table`` squeezed below its natural width shortens cells (``ndc…``,
    ``0.7…``), and a pipe counts as 80 columns. This one renders as one table when it fits;
    otherwise its columns are split into consecutive tables that each fit, every one
    repeating the first column (the strategy, the metric), so each cell is printed whole.
    """

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    text_columns: tuple[str, ...] = ("metric",)

    def widths(self) -> list[int]:
        """Each column's natural width: its longest cell or header."""
        return [
            max([cell_len(header), *(cell_len(str(row[i])) for row in self.rows)])
            for i, header in enumerate(self.headers)
        ]

    def column_groups(self, max_width: int) -> list[list[int]]:
        """Column indexes per table: the first column, then as many more as fit."""
        widths = self.widths()
        groups: list[list[int]] = []
        for column in range(1, len(self.headers)):
            group = groups[-1] if groups else None
            if group is None or _table_width([widths[i] for i in [*group, column]]) > max_width:
                groups.append([0, column])
            else:
                group.append(column)
        return groups or [[0]]

    def table(self, columns: Sequence[int], *, title: str) -> Table:
        table = Table(title=title or None, header_style="bold")
        widths = self.widths()
        for i in columns:
            header = self.headers[i]
            table.add_column(
                header,
                justify="left" if header in self.text_columns else "right",
                no_wrap=True,
                overflow="fold",  # only below a single column's width: folded, never cut
                min_width=widths[i],
            )
        for row in self.rows:
            table.add_row(*(row[i] for i in columns))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for n, columns in enumerate(self.column_groups(options.max_width)):
            yield self.table(columns, title=self.title if n == 0 else "")


def _table_width(widths: Sequence[int]) -> int:
    """Width of a boxed rich table with one space of padding each side of every cell."""
    return sum(widths) + 3 * len(widths) + 1


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *(line(r) for r in rows)])


def _report_row(report: EvalReport) -> list[str]:
    return [
        report.strategy,
        report.model or "—",
        str(report.queries),
        *(number(report.means.get(m)) for m in METRIC_NAMES),
        validity(report),
        f"{report.latency_ms['p50']:.1f}",
        f"{report.latency_ms['p95']:.1f}",
    ]


REPORT_HEADERS = (
    "strategy",
    "model",
    "queries",
    *METRIC_NAMES,
    "tool calls valid",
    "p50 ms",
    "p95 ms",
)


# -- one run ----------------------------------------------------------------------------------


def report_markdown(report: EvalReport) -> str:
    worst = sorted(report.per_query.items(), key=lambda item: item[1]["ndcg@10"])[:WORST_SHOWN]
    worst_rows = [
        [
            row["text"],
            number(row["ndcg@10"], 3),
            row.get("written") or "—",
            row.get("parse_class") or "—",
            row.get("error") or "",
        ]
        for _, row in worst
    ]
    lines = [
        f"# Eval · {report.name}",
        "",
        f"- dataset **{report.dataset}**, split **{report.split}**, "
        f"strategy **{report.strategy}**" + (f", model **{report.model}**" if report.model else ""),
        f"- {report.queries} queries"
        + (f" (the split's first {report.limit})" if report.limit else "")
        + f", ranked {report.depth} deep; {report.relevance}",
        f"- catalog version {report.catalog_version or 'unknown'}; run at {report.created_at}; "
        f"wall time {report.wall_s:.1f} s ({report.throughput()})",
        "",
        markdown_table(REPORT_HEADERS, [_report_row(report)]),
        "",
    ]
    if report.tool_calls is not None:
        rates = ", ".join(f"{k} {v:.1%}" for k, v in report.tool_calls.items())
        lines += [f"Tool calls: {rates}.", ""]
    lines += [
        f"## The {len(worst_rows)} lowest NDCG@10 queries",
        "",
        markdown_table(["query", "ndcg@10", "searched", "parse", "error"], worst_rows),
        "",
    ]
    return "\n".join(lines)


# -- several runs -----------------------------------------------------------------------------


def reports_table(reports: Sequence[EvalReport], title: str = "") -> MetricTable:
    return terminal_table(
        title,
        REPORT_HEADERS,
        [_report_row(r) for r in reports],
        text_columns=("strategy", "model", "tool calls valid"),
    )


def summary_markdown(reports: Sequence[EvalReport], title: str, plot: str | None = None) -> str:
    ordered = sorted(reports, key=lambda r: r.means.get("ndcg@10", 0.0), reverse=True)
    lines = [f"# Strategies · {title}", ""]
    if not ordered:
        return "\n".join([*lines, "No full runs yet.", ""])
    lines += [
        f"{ordered[0].relevance}. Each run's details: `<run>/report.md`.",
        "",
        markdown_table(REPORT_HEADERS, [_report_row(r) for r in ordered]),
        "",
    ]
    if plot:
        lines += [f"![NDCG@10 by strategy]({plot})", ""]
    return "\n".join(lines)


def kinds_markdown(reports: Sequence[EvalReport], metric: str = "ndcg@10") -> str:
    """Session runs: one row per strategy, one column per session kind (and all), ``metric``."""
    kinds = sorted({kind for r in reports for kind in (r.means_by_kind or {})})
    headers = ["strategy", "model", "all", *kinds]
    rows = [
        [
            r.strategy,
            r.model or "",
            number(r.means.get(metric)),
            *[number((r.means_by_kind or {}).get(kind, {}).get(metric)) for kind in kinds],
        ]
        for r in sorted(reports, key=lambda r: r.means.get(metric, 0.0))
    ]
    return markdown_table(headers, rows)
