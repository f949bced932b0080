"""Latency collection and the one table format every benchmark prints."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from tools.metrics.percentile import percentile


@dataclass(slots=True)
class Latencies:
    samples_ms: list[float] = field(default_factory=list)

    @contextmanager
    def measure(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.samples_ms.append((time.perf_counter() - started) * 1000)

    def percentile(self, q: float) -> float:
        """The project's percentile (``tools.metrics.percentile``), q in [0, 100]; NaN if empty."""
        return percentile(self.samples_ms, q) if self.samples_ms else float("nan")

    def p50(self) -> float:
        return self.percentile(50)

    def p95(self) -> float:
        return self.percentile(95)


def print_table(title: str, rows: Sequence[dict[str, object]]) -> None:
    """Rows of dicts with the same keys; float ratios are shown to two decimals."""
    if not rows:
        return
    table = Table(title=title, header_style="bold")
    for column in rows[0]:
        table.add_column(column, justify="left" if column in ("dataset", "measure") else "right")
    for row in rows:
        table.add_row(*(f"{v:.2f}x" if k == "ratio" else str(v) for k, v in row.items()))
    Console(width=160).print(table)
