"""Catalog drift: replace a seeded share of products in place and re-run a strategy, untrained.

What changes. ``share`` of the catalog is removed, stratified: the same share of the
split's judged products and of the unjudged rest (so judged products are hit in proportion,
never more or less by chance). Each removed product is replaced by a *successor*: a copy
with a new id (``<id>-drift<seed>``), its title perturbed (one word other than the first
dropped when it has four or more, and a model-year marker appended) and its price moved by
up to ±10 %. That is how real catalogs drift -- a product is delisted and a near-identical
new SKU appears -- and it needs no held-out products, which Chorus does not have.

How it is applied. The indexes the strategy reads are copied (tantivy directory, and the
embedded Chroma directory when the strategy uses concepts) into a workspace under
``runs_root``; the change is applied there with the indexes' own ``delete`` and ``upsert``, with no
rebuild and no retraining, and the workspace is deleted afterwards (``keep_workspace``
keeps it). The user's own indexes are never written to. Because the copy is what drifts,
the drift always runs on the embedded backends, whatever the lexical backend setting is.

What is reported. Metrics before and after on the same queries, twice after: with the
original judgments (a removed product's gain is lost for good) and with *successor
judgments* (each successor inherits the judgments of the product it replaced, the
assumption being that a relisted product is as relevant as its predecessor). And the
checks: results pointing at removed products (must be 0) and removed ids still found by
``get`` (must be 0), plus how many results were successors.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.protocol.strategies import WRITER_STRATEGIES
from agent.protocol.writer_prompts import Prompt, QueryWriter
from evals.plots import plot_per_query_scatter
from evals.records import METRIC_NAMES, EvalReport
from evals.report import MetricTable, markdown_table, number, terminal_table
from evals.strategies import Strategy
from evals.suite import (
    EvalOptions,
    EvalProgress,
    Retrieval,
    build_report,
    evaluate_strategy,
    load_judgments,
    open_writer,
    opened_strategy,
)
from tools.atomic_write import write_text
from tools.catalog.judgments import Judgments
from tools.catalog.product import Product
from tools.catalog.splits import select_split
from tools.errors import BackendError, BadInput
from tools.metrics import Run
from tools.search.backend import IndexMissing
from tools.search.tantivy_backend import TantivyIndex
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

DEFAULT_SHARE = 0.2
MODEL_YEAR_MARKERS = ("(2024 model)", "(new version)", "(2nd gen)", "(refresh)")
PRICE_DRIFT = 0.10


@dataclass(frozen=True, slots=True)
class DriftPlan:
    removed: list[str]
    added: list[Product]
    successor_of: dict[str, str]  # new id -> the removed id it replaces
    judged_in_catalog: int
    removed_judged: int


def plan_drift(
    products: Sequence[Product], judged: Iterable[str], share: float, seed: int
) -> DriftPlan:
    """Which products go (stratified by judged / unjudged) and their successors."""
    if not 0 < share < 1:
        raise BadInput(f"share must be between 0 and 1 (exclusive), got {share}")
    by_id = {p.id: p for p in products}
    judged_here = sorted(set(judged) & set(by_id))
    unjudged = sorted(set(by_id) - set(judged_here))
    rng = random.Random(seed)
    gone_judged = rng.sample(judged_here, round(share * len(judged_here)))
    gone_other = rng.sample(unjudged, round(share * len(unjudged)))
    removed = sorted(gone_judged + gone_other)
    added: list[Product] = []
    successor_of: dict[str, str] = {}
    taken = set(by_id)
    for old_id in removed:
        new = successor(by_id[old_id], rng, seed, taken)
        taken.add(new.id)
        added.append(new)
        successor_of[new.id] = old_id
    return DriftPlan(removed, added, successor_of, len(judged_here), len(gone_judged))


def successor(
    product: Product, rng: random.Random, seed: int, taken: Container[str] = frozenset()
) -> Product:
    """A relisted copy: new id, one title word dropped (4+ words), a marker, price ±10 %."""
    new_id = f"{product.id}-drift{seed}"
    while new_id in taken:
        new_id += "x"
    words = product.title.split()
    if len(words) >= 4:
        del words[rng.randrange(1, len(words))]
    title = " ".join([*words, rng.choice(MODEL_YEAR_MARKERS)])
    price = product.price
    if price is not None:
        factor = Decimal(str(round(rng.uniform(1 - PRICE_DRIFT, 1 + PRICE_DRIFT), 4)))
        price = (price * factor).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return replace(product, id=new_id, title=title, price=price)


def successor_judgments(judgments: Judgments, successor_of: Mapping[str, str]) -> Judgments:
    """The judgments with each removed product's gains moved to its successor."""
    replaced_by = {old: new for new, old in successor_of.items()}
    moved = Judgments(queries=dict(judgments.queries), max_gain=judgments.max_gain)
    for qid, judged in judgments.qrels.items():
        moved.qrels[qid] = {replaced_by.get(pid, pid): gain for pid, gain in judged.items()}
    return moved


@dataclass(slots=True)
class DriftReport:
    dataset: str
    split: str
    strategy: str
    model: str | None
    share: float
    seed: int
    indexes: list[str]
    products_before: int
    products_after: int
    removed: int
    removed_judged: int
    judged_in_catalog: int
    added: int
    removed_hits: int
    removed_still_indexed: int
    successor_hits: int
    apply_s: float
    workspace: str
    kept_workspace: bool
    before: EvalReport
    after: EvalReport
    after_with_successors: EvalReport
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DriftOutcome:
    report: DriftReport
    out_dir: Path


class MemoWriter:
    """Answers a prompt seen before from memory, so before and after search the same words."""

    def __init__(self, writer: QueryWriter) -> None:
        self.writer = writer
        self.name = getattr(writer, "name", "writer")
        self.replies: dict[str, str] = {}

    def __call__(self, prompts: Sequence[Prompt]) -> list[str]:
        keys = [json.dumps([prompt.messages, prompt.tools], sort_keys=True) for prompt in prompts]
        new = [i for i, key in enumerate(keys) if key not in self.replies]
        if new:
            for i, reply in zip(new, self.writer([prompts[i] for i in new]), strict=True):
                self.replies[keys[i]] = reply
        return [self.replies[key] for key in keys]


def copy_indexes(
    settings: Settings, workspace: Settings, dataset: str, indexes: Iterable[str]
) -> None:
    """Copy the embedded index directories the strategy reads into the workspace."""
    sources = {"lexical": settings.tantivy_dir(dataset), "concepts": settings.chroma_dir(dataset)}
    targets = {"lexical": workspace.tantivy_dir(dataset), "concepts": workspace.chroma_dir(dataset)}
    for kind in sorted(indexes):
        if not sources[kind].is_dir():
            raise IndexMissing(
                f"drift copies the embedded {kind} index, and there is none at {sources[kind]}; "
                f"build it with `shopagent index --dataset {dataset}`"
            )
        shutil.copytree(sources[kind], targets[kind])


@dataclass(frozen=True, slots=True)
class _Change:
    """What one drift run changes, and where (the workspace holding the copied indexes)."""

    share: float
    seed: int
    indexes: list[str]
    workspace: Path
    keep_workspace: bool


def run_drift(
    settings: Settings,
    options: EvalOptions,
    *,
    share: float = DEFAULT_SHARE,
    seed: int = 0,
    keep_workspace: bool = False,
    progress: EvalProgress | None = None,
    writer: QueryWriter | None = None,
    llm: BaseChatModel | None = None,
    judgments: Judgments | None = None,
) -> DriftOutcome:
    """``shopagent eval drift``: before/after metrics of a strategy under catalog drift."""
    if not 0 < share < 1:
        raise BadInput(f"share must be between 0 and 1 (exclusive), got {share}")
    dataset = options.dataset
    all_judgments = judgments if judgments is not None else load_judgments(settings, dataset)
    chosen = select_split(all_judgments, dataset, options.split, options.limit)
    if options.strategy in WRITER_STRATEGIES:
        writer = MemoWriter(writer if writer is not None else open_writer(settings, options.model))
    runs_root = options.runs_root
    runs_root.mkdir(parents=True, exist_ok=True)
    workspace_home = Path(tempfile.mkdtemp(prefix=".drift-workspace-", dir=runs_root))
    workspace = replace(
        settings, home=workspace_home, lexical_backend="tantivy", es_url=None, chroma_url=None
    )
    toolbox = SearchToolbox(workspace, dataset)
    try:
        with opened_strategy(
            settings,
            dataset,
            options.strategy,
            toolbox,
            model=options.model,
            writer=writer,
            llm=llm,
        ) as (built, model_label):
            indexes = sorted(built.indexes | {"lexical"})  # the lexical copy lists the catalog
            copy_indexes(settings, workspace, dataset, indexes)
            base = options.run_name(model_label)
            change = _Change(share, seed, indexes, workspace_home, keep_workspace)
            report, before, after = _drift(
                toolbox, built, chosen, options, change, model=model_label, progress=progress
            )
    finally:
        if not keep_workspace:
            shutil.rmtree(workspace_home, ignore_errors=True)
    out_dir = runs_root / f"{base}-drift{round(share * 100)}-seed{seed}"
    _write_drift(report, before, after, out_dir)
    return DriftOutcome(report, out_dir)


def _drift(
    toolbox: SearchToolbox,
    strategy: Strategy,
    judgments: Judgments,
    options: EvalOptions,
    change: _Change,
    *,
    model: str | None,
    progress: EvalProgress | None,
) -> tuple[DriftReport, Run, Run]:
    dataset, split, name = options.dataset, options.split, options.run_name(model)
    common = {"dataset": dataset, "split": split, "model": model, "depth": options.depth}

    def scored(label: str) -> tuple[Retrieval, EvalReport]:
        return evaluate_strategy(
            strategy,
            judgments,
            name=f"{name}-{label}",
            batch_size=options.writer_batch(),
            progress=progress,
            **common,
        )

    before_run, before = scored("before")
    lexical = toolbox.lexical
    if not isinstance(lexical, TantivyIndex):
        raise BadInput("drift runs on a copy of the embedded tantivy index")
    products = list(lexical.iter_products())
    plan = plan_drift(products, judgments.judged_products(), change.share, change.seed)
    started = time.perf_counter()
    lexical.delete(plan.removed)
    lexical.upsert(plan.added)
    if "concepts" in change.indexes:
        toolbox.concepts.delete(plan.removed)
        toolbox.concepts.upsert(plan.added)
    apply_s = time.perf_counter() - started
    expected = len(products) - len(plan.removed) + len(plan.added)
    if lexical.count() != expected:
        raise BackendError(f"the drifted index holds {lexical.count()} products, not {expected}")

    after_run, after = scored("after")
    carried = build_report(
        after_run,
        successor_judgments(judgments, plan.successor_of),
        strategy=strategy.name,
        **common,
    )
    removed = set(plan.removed)
    results = [pid for qid in after_run.run.rankings for pid in after_run.run.ids(qid)]
    report = DriftReport(
        dataset=dataset,
        split=split,
        strategy=strategy.name,
        model=model,
        share=change.share,
        seed=change.seed,
        indexes=change.indexes,
        products_before=len(products),
        products_after=lexical.count(),
        removed=len(plan.removed),
        removed_judged=plan.removed_judged,
        judged_in_catalog=plan.judged_in_catalog,
        added=len(plan.added),
        removed_hits=sum(pid in removed for pid in results),
        removed_still_indexed=sum(lexical.get(pid) is not None for pid in plan.removed),
        successor_hits=sum(pid in plan.successor_of for pid in results),
        apply_s=apply_s,
        workspace=str(change.workspace),
        kept_workspace=change.keep_workspace,
        before=before,
        after=after,
        after_with_successors=carried,
    )
    return report, before_run.run, after_run.run


def _write_drift(report: DriftReport, before: Run, after: Run, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    before.write_trec(out_dir / "before.trec")
    after.write_trec(out_dir / "after.trec")
    write_text(out_dir / "drift.json", json.dumps(report.to_dict(), indent=2, sort_keys=True))
    plot_per_query_scatter(report.before, report.after, "ndcg@10", out_dir / "before-vs-after.png")
    write_text(out_dir / "drift.md", drift_markdown(report) + "\n![](before-vs-after.png)\n")


# -- rendering ------------------------------------------------------------------------------------


def _drift_rows(drift: DriftReport) -> list[list[str]]:
    after_carried = drift.after_with_successors.means
    return [
        [
            metric,
            number(drift.before.means.get(metric)),
            number(drift.after.means.get(metric)),
            number(after_carried.get(metric)),
        ]
        for metric in METRIC_NAMES
    ]


DRIFT_HEADERS = ("metric", "before", "after", "after (successor judgments)")


def drift_table(drift: DriftReport) -> MetricTable:
    title = f"drift · {drift.strategy} · {drift.share:.0%} replaced (seed {drift.seed})"
    return terminal_table(title, DRIFT_HEADERS, _drift_rows(drift))


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
