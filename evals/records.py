"""What an eval run leaves behind, as data: the report model and the names of its files.

The bottom of ``evals``: the suite writes these records, and the renderers (``report``,
``plots``), ``compare`` and ``drift`` read them. Keeping the data model apart from the code
that produces it is what lets each of those import only downward, with no cycle through the
suite.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.atomic_write import write_text
from tools.errors import BadInput, NotFound
from tools.metrics import METRICS

METRIC_NAMES: tuple[str, ...] = tuple(METRICS)
REPORT_FILE = "report.json"
RUN_FILE = "run.trec"
MARKDOWN_FILE = "report.md"


@dataclass(slots=True)
class EvalReport:
    """Everything one eval run measured; ``report.json`` is this, as JSON."""

    name: str
    dataset: str
    split: str
    strategy: str
    model: str | None
    depth: int
    means: dict[str, float]
    per_query: dict[str, dict[str, Any]]
    tool_calls: dict[str, float] | None
    latency_ms: dict[str, float]
    wall_s: float
    relevance: str
    catalog_version: str | None = None
    #: ``--limit``: the run covers only the split's first ``limit`` queries.
    limit: int | None = None
    #: ``--sessions``: the sessions file's name (its stem); ``per_query`` is then keyed by
    #: session id, each entry with the session's ``turns`` and ``kind``.
    sessions: str | None = None
    #: Mean metrics per session ``kind`` (session runs only).
    means_by_kind: dict[str, dict[str, float]] | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def queries(self) -> int:
        return len(self.per_query)

    @property
    def turns(self) -> int | None:
        """Shopper messages a session run went through (``None`` for a query run)."""
        if not self.sessions:
            return None
        return sum(len(row.get("turns") or ()) for row in self.per_query.values())

    def throughput(self) -> str:
        """The run's speed in words: requests per second, and for sessions also the shopper's
        turns per second (each turn is one request to the assistant)."""
        wall = max(self.wall_s, 1e-9)
        unit = "sessions" if self.sessions else "requests"
        text = f"{self.queries / wall:.2f} {unit}/s"
        if self.turns is not None:
            text += f", {self.turns} turns at {self.turns / wall:.2f} turns/s"
        return text

    def values(self, metric: str) -> dict[str, float]:
        """``{query_id: value}`` of one metric (what paired tests compare)."""
        if metric not in METRIC_NAMES:
            raise BadInput(f"unknown metric {metric!r}; choose one of {list(METRIC_NAMES)}")
        return {qid: float(row[metric]) for qid, row in self.per_query.items()}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalReport:
        return cls(**data)

    def write(self, path: Path) -> None:
        write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True))

    @classmethod
    def read(cls, path: Path) -> EvalReport:
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError) as error:
            raise BadInput(f"{path}: not an eval report ({type(error).__name__})") from None


def collect_reports(
    runs_root: Path, dataset: str, split: str, sessions: str | None = None
) -> list[EvalReport]:
    """Every full (not ``--limit``) report of one dataset and split under ``runs_root``: of
    query runs, or with ``sessions`` of the runs over that sessions file."""
    reports: list[EvalReport] = []
    for path in sorted(runs_root.glob(f"*/{REPORT_FILE}")):
        try:
            report = EvalReport.read(path)
        except ValueError:
            continue
        if (
            report.dataset == dataset
            and report.split == split
            and report.limit is None
            and report.sessions == sessions
        ):
            reports.append(report)
    return reports


def resolve_report(ref: str | Path, runs_root: Path = Path("runs")) -> EvalReport:
    """A run directory, its ``report.json``, or a run name under ``runs_root``."""
    path = Path(ref)
    for candidate in (path, path / REPORT_FILE, runs_root / str(ref) / REPORT_FILE):
        if candidate.is_file():
            return EvalReport.read(candidate)
    raise NotFound(f"no eval report for {str(ref)!r} (looked in {path} and {runs_root})")
