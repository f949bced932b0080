"""How eval results read: markdown files next to the runs, and rich tables for the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.table import Table

from evals.suite import METRIC_NAMES, EvalReport

if TYPE_CHECKING:
    from evals.compare import Comparison
    from evals.drift import DriftReport

WORST_SHOWN = 10


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _p_value(value: float | None) -> str:
    if value is None:
        return "—"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def validity(report: EvalReport) -> str:
    """The valid share of tool calls (repaired share in brackets), or n/a without a model."""
    if report.tool_calls is None:
        return "n/a"
    return f"{report.tool_calls['valid']:.1%} (+{report.tool_calls['repaired']:.1%} repaired)"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *(line(r) for r in rows)])


def _report_row(report: EvalReport) -> list[str]:
    return [
        report.strategy,
        report.model or "—",
        str(report.queries),
        *(_number(report.means.get(m)) for m in METRIC_NAMES),
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
            _number(row["ndcg@10"], 3),
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
        f"wall time {report.wall_s:.1f} s",
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


def reports_table(reports: Sequence[EvalReport], title: str = "") -> Table:
    table = Table(title=title or None, header_style="bold")
    for header in REPORT_HEADERS:
        numeric = header not in ("strategy", "model", "tool calls valid")
        table.add_column(header, justify="right" if numeric else "left")
    for report in reports:
        table.add_row(*_report_row(report))
    return table


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


# -- comparisons ------------------------------------------------------------------------------

COMPARISON_HEADERS = (
    "metric",
    "A",
    "B",
    "Δ (B−A)",
    "CI",
    "win/tie/loss",
    "Wilcoxon p",
    "t-test p",
)


def _comparison_rows(comparison: Comparison) -> list[list[str]]:
    return [
        [
            row.metric,
            _number(row.mean_a),
            _number(row.mean_b),
            f"{row.delta:+.4f}",
            f"[{row.ci_low:+.4f}, {row.ci_high:+.4f}]",
            f"{row.wins}/{row.ties}/{row.losses}",
            _p_value(row.wilcoxon_p),
            _p_value(row.ttest_p),
        ]
        for row in comparison.rows
    ]


def comparison_table(comparison: Comparison) -> Table:
    table = Table(title=f"A = {comparison.a}  ·  B = {comparison.b}", header_style="bold")
    for header in COMPARISON_HEADERS:
        table.add_column(header, justify="left" if header == "metric" else "right")
    for cells in _comparison_rows(comparison):
        table.add_row(*cells)
    return table


def comparison_markdown(comparison: Comparison, plot: str | None = None) -> str:
    lines = [
        f"# Compare · {comparison.b} vs {comparison.a}",
        "",
        f"- A = `{comparison.a}`, B = `{comparison.b}`; {comparison.shared_queries} shared queries",
        f"- wins count queries where B beats A; CI: {comparison.confidence:.0%} paired bootstrap "
        f"of the mean delta ({comparison.resamples} resamples, seed {comparison.seed}); "
        "Wilcoxon signed-rank and paired t-test, two-sided",
        *(f"- note: {w}" for w in comparison.warnings),
        *(f"- {row.metric}: {row.note}" for row in comparison.rows if row.note),
        "",
        markdown_table(COMPARISON_HEADERS, _comparison_rows(comparison)),
        "",
    ]
    if plot:
        lines += [f"![per-query scatter]({plot})", ""]
    return "\n".join(lines)


# -- drift ------------------------------------------------------------------------------------


def _drift_rows(drift: DriftReport) -> list[list[str]]:
    after_carried = drift.after_with_successors.means
    return [
        [
            metric,
            _number(drift.before.means.get(metric)),
            _number(drift.after.means.get(metric)),
            _number(after_carried.get(metric)),
        ]
        for metric in METRIC_NAMES
    ]


DRIFT_HEADERS = ("metric", "before", "after", "after (successor judgments)")


def drift_table(drift: DriftReport) -> Table:
    table = Table(
        title=f"drift · {drift.strategy} · {drift.share:.0%} replaced (seed {drift.seed})",
        header_style="bold",
    )
    for header in DRIFT_HEADERS:
        table.add_column(header, justify="left" if header == "metric" else "right")
    for cells in _drift_rows(drift):
        table.add_row(*cells)
    return table


def drift_markdown(drift: DriftReport) -> str:
    verdict = (
        "no result points to a removed product"
        if drift.removed_hits == 0
        else f"**{drift.removed_hits} results point to removed products**"
    )
    return "\n".join(
        [
            f"# Drift · {drift.dataset} {drift.split} · {drift.strategy}",
            "",
            f"- catalog: {drift.products_before} products; removed {drift.removed} "
            f"({drift.removed_judged} of {drift.judged_in_catalog} judged, stratified), "
            f"added {drift.added} successors; {drift.products_after} after",
            f"- applied in place (delete + upsert) to a copy of the {', '.join(drift.indexes)} "
            "index(es) "
            + (
                f"kept at `{drift.workspace}`"
                if drift.kept_workspace
                else "in a workspace deleted afterwards"
            )
            + "; nothing was retrained; the user's own indexes were not touched",
            f"- change applied in {drift.apply_s:.1f} s",
            f"- check: {verdict}; {drift.successor_hits} results are new (successor) products",
            "- *after*: the original judgments (a removed product is lost, its successor "
            "unjudged); *after (successor judgments)*: each successor inherits the judgments "
            "of the product it replaced",
            "",
            markdown_table(DRIFT_HEADERS, _drift_rows(drift)),
            "",
        ]
    )
