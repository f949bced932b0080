"""``shopagent eval run --sessions FILE``: one strategy over a file of sessions, scored.

The report is the one a query run writes (``evals.records.EvalReport``), keyed by session id:
each ``per_query`` entry has the intent's query as ``text``, the session's ``turns`` and
``kind``, ``top10`` and the metrics; ``means_by_kind`` has the means per kind. Only the
sessions whose query is in the split are run (a file of dev and test sessions is run one
split at a time); how many were left out is said. The split's session summary
(``<dataset>-<split>-<file>-summary.md``) is a table per kind of every strategy run on the
same file.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from agent.terminal.render import errors
from evals.records import METRIC_NAMES, EvalReport, collect_reports
from evals.report import kinds_markdown, summary_markdown
from evals.session_runs import SESSION_BATCH_SIZE, SESSION_STRATEGIES, run_sessions
from evals.suite import (
    EvalOptions,
    EvalOutcome,
    EvalProgress,
    Retrieval,
    build_report,
    load_judgments,
    open_writer,
    run_dir_name,
    write_outputs,
)
from tools.atomic_write import write_text
from tools.catalog.judgments import Judgments, Query
from tools.catalog.sessions import Session, read_sessions
from tools.catalog.splits import split_queries
from tools.errors import BadInput
from tools.metrics import mean_scores
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings
from tools.stores import read_manifest


def session_judgments(sessions: list[Session], judgments: Judgments) -> Judgments:
    """The intents' judgments keyed by session id (a query shared by sessions is copied)."""
    scored = Judgments(max_gain=judgments.max_gain)
    for session in sessions:
        scored.queries[session.id] = Query(session.id, session.query_text)
        scored.qrels[session.id] = dict(judgments.qrels[session.query_id])
    return scored


def sessions_in_split(
    sessions: list[Session], judgments: Judgments, dataset: str, split: str
) -> list[Session]:
    """The sessions whose query is a scorable query of the split, in file order."""
    wanted = {q.id for q in split_queries(judgments, dataset, split)}
    return [s for s in sessions if s.query_id in wanted]


def run_session_eval(
    settings: Settings,
    options: EvalOptions,
    sessions_path: Path,
    *,
    progress: EvalProgress | None = None,
    writer: object | None = None,
    judgments: Judgments | None = None,
) -> EvalOutcome:
    """Run ``options.strategy`` over the sessions of ``options.split``; write its reports.
    ``writer`` replaces the local model and ``judgments`` the dataset's (tests pass fakes)."""
    dataset, split, strategy = options.dataset, options.split, options.strategy
    if strategy not in SESSION_STRATEGIES:
        raise BadInput(
            f"strategy {strategy!r} does not run over sessions; choose one of "
            f"{list(SESSION_STRATEGIES)}"
        )
    all_judgments = judgments if judgments is not None else load_judgments(settings, dataset)
    read = read_sessions(sessions_path, all_judgments)
    for line, reason in read.skipped[:5]:
        errors.print(f"{sessions_path}:{line}: skipped: {reason}", markup=False)
    if len(read.skipped) > 5:
        errors.print(f"{sessions_path}: {len(read.skipped)} rows skipped in all", markup=False)
    chosen = sessions_in_split(read.sessions, all_judgments, dataset, split)
    if not chosen:
        raise BadInput(f"{sessions_path}: no session stands for a {dataset} {split} query")
    if len(chosen) < len(read.sessions):
        left = len(read.sessions) - len(chosen)
        errors.print(f"{left} session(s) of other splits left out", markup=False)
    chosen = chosen[: options.limit]
    model_label = None
    if strategy == "policy" and writer is None:
        writer = open_writer(settings, options.model)
    if strategy == "policy":
        model_label = getattr(writer, "name", None) or options.model or "writer"
    stem = Path(sessions_path).stem
    name = run_dir_name(dataset, split, f"{stem}-{strategy}", model_label, options.limit)
    retrieval = run_sessions(
        strategy,
        chosen,
        SearchToolbox(settings, dataset),
        writer=writer,  # type: ignore[arg-type]
        model_name=model_label or "writer",
        dataset=dataset,
        depth=options.depth,
        batch_size=options.writer_batch(SESSION_BATCH_SIZE),
        progress=progress,
        name=name,
    )
    scored = session_judgments(chosen, all_judgments)
    report = build_report(
        Retrieval(retrieval.run, retrieval.traces, retrieval.wall_s),
        scored,
        dataset=dataset,
        split=split,
        strategy=strategy,
        model=model_label,
        depth=options.depth,
        catalog_version=read_manifest(settings, dataset).get("catalog_version"),
    )
    report.limit = options.limit
    report.sessions = stem
    by_kind: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for session in chosen:
        entry = report.per_query[session.id]
        entry["turns"] = list(session.turns)
        entry["kind"] = session.kind
        metrics = {name: float(entry[name]) for name in METRIC_NAMES}
        by_kind[session.kind or "(none)"][session.id] = metrics
    report.means_by_kind = {kind: mean_scores(rows) for kind, rows in sorted(by_kind.items())}
    run_dir = write_outputs(retrieval.run, report, options.runs_root / name)
    if options.limit is None:
        write_session_summary(options.runs_root, dataset, split, stem)
    return EvalOutcome(report, retrieval.run, run_dir)


def write_session_summary(runs_root: Path, dataset: str, split: str, sessions: str) -> Path:
    """``<dataset>-<split>-<sessions>-summary.md``: every strategy on one sessions file."""
    reports: list[EvalReport] = collect_reports(runs_root, dataset, split, sessions)
    path = runs_root / f"{run_dir_name(dataset, split, sessions)}-summary.md"
    text = summary_markdown(reports, title=f"{dataset} · {split} · sessions {sessions}")
    if reports:
        text += "\n## NDCG@10 per kind\n\n" + kinds_markdown(reports) + "\n"
    write_text(path, text)
    return path
