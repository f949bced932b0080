"""Run one strategy over one split: a TREC run file, a JSON report and a markdown summary.

Every query of the split is retrieved ``DEPTH`` (100) deep, so NDCG@100 and Recall@100 see a
full list. Metrics are the project's own (``tools.metrics``, checked against ranx in tests),
with the dataset's gains: Chorus ratings 0..3 as graded gains; Home Depot binary, relevant
when the mean rating is >= 2.33 (``tools.catalog.homedepot.RELEVANT_AT``). Recall and MRR count
a product as relevant from gain 1. Latency per query is generation plus search time.

Output: ``<runs_root>/<dataset>-<split>-<strategy>[-<model>][-first<N>]/`` holding
``run.trec``, ``report.json`` and ``report.md``; the ``-first<N>`` suffix marks a ``--limit``
run so it never overwrites a full one. After each run the split's summary
(``<dataset>-<split>-summary.md`` and a metric-by-strategy PNG) is rewritten from every
report found in ``runs_root``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.protocol.writer_prompts import QueryWriter
from agent.runtime.model_store import resolve_model_dir
from agent.runtime.query_writer import LocalQueryWriter
from evals.plots import plot_metric_by_strategy
from evals.records import (
    MARKDOWN_FILE,
    REPORT_FILE,
    RUN_FILE,
    EvalReport,
    collect_reports,
)
from evals.report import report_markdown, summary_markdown
from evals.strategies import (
    STRATEGY_NAMES,
    WRITER_STRATEGIES,
    Retrieved,
    Strategy,
    StrategyTrace,
    build_strategy,
)
from tools.atomic_write import write_text
from tools.catalog.judgments import Judgments, Query
from tools.catalog.splits import select_split
from tools.errors import BadInput
from tools.metrics import Run, evaluate, mean_scores
from tools.metrics.percentile import percentile
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

DEPTH = 100
BATCH_SIZE = 16

#: ``progress(done, total)`` after every query or batch.
EvalProgress = Callable[[int, int], None]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class EvalOptions:
    """What to evaluate and where the reports go: the flags of ``eval run`` and ``eval drift``.

    Built once by the command line and handed down whole, so ``run_eval``, ``run_drift`` and
    what they call read the same values instead of each threading the same keywords.
    """

    dataset: str = "chorus"
    split: str = "all"
    strategy: str = "raw"
    #: A stored model for the strategies that need one (``None``: the configured default).
    model: str | None = None
    #: Only the split's first ``limit`` queries (the run's folder says ``-first<N>``).
    limit: int | None = None
    runs_root: Path = Path("runs")
    depth: int = DEPTH
    #: Writer prompts generated together (``None``: ``BATCH_SIZE`` for queries,
    #: ``evals.session_runs.SESSION_BATCH_SIZE`` for sessions).
    batch_size: int | None = None

    def writer_batch(self, default: int = BATCH_SIZE) -> int:
        """The writer's batch: the one asked for, else the run kind's ``default``."""
        return self.batch_size or default

    def run_name(self, model_label: str | None) -> str:
        """The run's folder name, with the label of the model the strategy was opened with."""
        return run_dir_name(self.dataset, self.split, self.strategy, model_label, self.limit)


@dataclass(frozen=True, slots=True)
class EvalOutcome:
    report: EvalReport
    run: Run
    run_dir: Path


# -- running ----------------------------------------------------------------------------------


def retrieve_all(
    strategy: Strategy,
    queries: Sequence[Query],
    *,
    depth: int = DEPTH,
    batch_size: int = BATCH_SIZE,
    progress: EvalProgress | None = None,
) -> Iterator[tuple[Query, Retrieved]]:
    """Each query with its results and trace: batched when the strategy can batch."""
    if batch_size < 1:
        raise BadInput(f"batch size must be at least 1, got {batch_size}")
    batched = getattr(strategy, "retrieve_batch", None)
    step = batch_size if batched is not None else 1
    done = 0
    for start in range(0, len(queries), step):
        chunk = queries[start : start + step]
        if batched is not None:
            answers = batched([q.text for q in chunk], depth)
        else:
            answers = [strategy.retrieve(q.text, depth) for q in chunk]
        yield from zip(chunk, answers, strict=True)
        done += len(chunk)
        if progress is not None:
            progress(done, len(queries))


@dataclass(slots=True)
class Retrieval:
    """A strategy's answers to a set of queries, before any scoring."""

    run: Run
    traces: dict[str, StrategyTrace]
    wall_s: float


def retrieve_run(
    strategy: Strategy,
    queries: Sequence[Query],
    *,
    name: str,
    depth: int = DEPTH,
    batch_size: int = BATCH_SIZE,
    progress: EvalProgress | None = None,
) -> Retrieval:
    started = time.perf_counter()
    run = Run(name)
    traces: dict[str, StrategyTrace] = {}
    for query, (results, trace) in retrieve_all(
        strategy, queries, depth=depth, batch_size=batch_size, progress=progress
    ):
        run.add(query.id, [(hit.product_id, hit.score) for hit in results.hits])
        traces[query.id] = trace
    return Retrieval(run, traces, time.perf_counter() - started)


def build_report(
    retrieval: Retrieval,
    judgments: Judgments,
    *,
    dataset: str,
    split: str,
    strategy: str,
    model: str | None = None,
    depth: int = DEPTH,
    catalog_version: str | None = None,
) -> EvalReport:
    """Score a retrieval against ``judgments``; every judged query must have been retrieved."""
    run, traces = retrieval.run, retrieval.traces
    scores = evaluate(run, judgments.qrels)
    missing = [qid for qid in scores if qid not in traces]
    if missing:
        raise ValueError(f"{len(missing)} judged queries were never retrieved, e.g. {missing[0]}")
    per_query = {
        qid: {
            "text": judgments.queries[qid].text,
            **scores[qid],
            **_trace_fields(traces[qid]),
            "top10": run.ids(qid)[:10],
        }
        for qid in scores
    }
    return EvalReport(
        name=run.name,
        dataset=dataset,
        split=split,
        strategy=strategy,
        model=model,
        depth=depth,
        means=mean_scores(scores),
        per_query=per_query,
        tool_calls=tool_call_rates(traces[qid] for qid in scores),
        latency_ms=latency_summary([traces[qid].latency_ms for qid in scores]),
        wall_s=retrieval.wall_s,
        relevance=relevance_note(dataset, judgments),
        catalog_version=catalog_version,
    )


def evaluate_strategy(
    strategy: Strategy,
    judgments: Judgments,
    *,
    name: str,
    dataset: str,
    split: str,
    model: str | None = None,
    depth: int = DEPTH,
    batch_size: int = BATCH_SIZE,
    progress: EvalProgress | None = None,
    catalog_version: str | None = None,
) -> tuple[Retrieval, EvalReport]:
    """Retrieve every judged query and score the run; writes nothing.

    The retrieval comes back whole (traces included) so that a caller can score the same
    answers against other judgments (drift's successor judgments) without retrieving again.
    """
    retrieval = retrieve_run(
        strategy, list(judgments), name=name, depth=depth, batch_size=batch_size, progress=progress
    )
    report = build_report(
        retrieval,
        judgments,
        dataset=dataset,
        split=split,
        strategy=strategy.name,
        model=model,
        depth=depth,
        catalog_version=catalog_version,
    )
    return retrieval, report


def _trace_fields(trace: StrategyTrace) -> dict[str, Any]:
    fields = trace.to_dict()
    fields.pop("query_text")
    return fields


def tool_call_rates(traces: Iterable[StrategyTrace]) -> dict[str, float] | None:
    """Shares of valid / repaired / invalid replies; None when no model wrote anything."""
    classes = [t.parse_class for t in traces if t.parse_class is not None]
    if not classes:
        return None
    return {kind: classes.count(kind) / len(classes) for kind in ("valid", "repaired", "invalid")}


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    if not latencies_ms:
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0}
    return {
        "p50": percentile(latencies_ms, 50),
        "p95": percentile(latencies_ms, 95),
        "mean": sum(latencies_ms) / len(latencies_ms),
    }


def relevance_note(dataset: str, judgments: Judgments) -> str:
    if dataset == "homedepot":
        return "binary gains: mean rating >= 2.33 is relevant (Home Depot, 1..3 scale)"
    if dataset == "chorus":
        return "graded gains 0..3 (Chorus ratings); recall and MRR count gain >= 1"
    return f"gains 0..{judgments.max_gain}; recall and MRR count gain >= 1"


# -- output -----------------------------------------------------------------------------------


def run_dir_name(
    dataset: str, split: str, strategy: str, model: str | None = None, limit: int | None = None
) -> str:
    parts = [dataset, split, strategy]
    if model:
        parts.append(model)
    if limit is not None:
        parts.append(f"first{limit}")
    return _UNSAFE.sub("_", "-".join(parts))


def write_outputs(run: Run, report: EvalReport, run_dir: Path) -> Path:
    """``run.trec``, ``report.json`` and ``report.md`` in ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    run.write_trec(run_dir / RUN_FILE)
    report.write(run_dir / REPORT_FILE)
    write_text(run_dir / MARKDOWN_FILE, report_markdown(report))
    return run_dir


def write_summary(runs_root: Path, dataset: str, split: str, metric: str = "ndcg@10") -> Path:
    """``<dataset>-<split>-summary.md`` and its metric-by-strategy PNG, from every report."""
    reports = collect_reports(runs_root, dataset, split)
    stem = _UNSAFE.sub("_", f"{dataset}-{split}")
    plot = runs_root / f"{stem}-{metric}.png"
    if reports:
        plot_metric_by_strategy(reports, metric, plot)
    path = runs_root / f"{stem}-summary.md"
    write_text(path, summary_markdown(reports, title=f"{dataset} · {split}", plot=plot.name))
    return path


# -- the whole command ------------------------------------------------------------------------


def load_judgments(settings: Settings, dataset: str) -> Judgments:
    from tools.catalog.datasets import load_dataset

    return load_dataset(dataset, settings).judgments()


def open_writer(settings: Settings, model: str | None) -> LocalQueryWriter:
    return LocalQueryWriter(resolve_model_dir(settings, model), runtime=settings.llm.runtime)


@contextmanager
def opened_strategy(
    settings: Settings,
    dataset: str,
    strategy: str,
    toolbox: SearchToolbox,
    *,
    model: str | None = None,
    writer: QueryWriter | None = None,
    llm: BaseChatModel | None = None,
) -> Iterator[tuple[Strategy, str | None]]:
    """The strategy with what it needs, and the model label its run is named by.

    policy / concepts / direct get the local model in process (``writer`` replaces it);
    agent gets a chat model: the configured endpoint, or the local model served for the
    duration of the ``with`` (``llm`` replaces both).
    """
    with ExitStack() as stack:
        label: str | None = None
        if strategy in WRITER_STRATEGIES:
            if writer is None:
                writer = open_writer(settings, model)
            label = getattr(writer, "name", None) or model or "writer"
        if strategy == "agent":
            if llm is None:
                from agent.runtime.llm_client import chat_model
                from agent.runtime.model_server import llm_endpoint

                chosen = replace(
                    settings, llm=replace(settings.llm, model=model or settings.llm.model)
                )
                llm = chat_model(stack.enter_context(llm_endpoint(chosen)))
                label = Path(model or settings.llm.model).name
            else:
                from agent.conversation.graph import model_id_of

                label = model or model_id_of(llm)
        yield build_strategy(strategy, toolbox, writer, llm=llm, dataset=dataset), label


def run_eval(
    settings: Settings,
    options: EvalOptions,
    *,
    progress: EvalProgress | None = None,
    writer: QueryWriter | None = None,
    llm: BaseChatModel | None = None,
    judgments: Judgments | None = None,
) -> EvalOutcome:
    """``shopagent eval run``: evaluate one strategy on one split and write its reports.

    ``writer`` / ``llm`` replace the local model (tests pass fakes); ``judgments`` replaces
    the dataset's own (tests pass a small set).
    """
    from tools.stores import read_manifest

    dataset, split, strategy = options.dataset, options.split, options.strategy
    if strategy not in STRATEGY_NAMES:
        raise BadInput(f"unknown strategy {strategy!r}; choose one of {list(STRATEGY_NAMES)}")
    all_judgments = judgments if judgments is not None else load_judgments(settings, dataset)
    chosen = select_split(all_judgments, dataset, split, options.limit)
    toolbox = SearchToolbox(settings, dataset)
    with opened_strategy(
        settings, dataset, strategy, toolbox, model=options.model, writer=writer, llm=llm
    ) as (built, model_label):
        name = options.run_name(model_label)
        retrieval, report = evaluate_strategy(
            built,
            chosen,
            name=name,
            dataset=dataset,
            split=split,
            model=model_label,
            depth=options.depth,
            batch_size=options.writer_batch(),
            progress=progress,
            catalog_version=read_manifest(settings, dataset).get("catalog_version"),
        )
    report.limit = options.limit
    run_dir = write_outputs(retrieval.run, report, options.runs_root / name)
    if options.limit is None:
        write_summary(options.runs_root, dataset, split)
    return EvalOutcome(report, retrieval.run, run_dir)
