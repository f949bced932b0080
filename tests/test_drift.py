"""Catalog drift: a seeded, stratified replacement applied in place to copies of the indexes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from agent.protocol.writer_prompts import Prompt
from evals.drift import plan_drift, run_drift, successor_judgments
from evals.suite import EvalOptions, run_eval
from tools.catalog import chorus
from tools.catalog.import_report import ImportReport
from tools.catalog.judgments import Judgments, Query
from tools.catalog.product import Product
from tools.catalog.splits import select_split
from tools.search.backend import IndexMissing
from tools.settings.config import Settings
from tools.stores import open_concepts, open_lexical

QUERIES = 20
OTHER_PRODUCTS = 1500


@pytest.fixture(scope="module")
def catalog(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, Judgments]:
    """20 Chorus queries, their judged products and 1,500 others, in a real tantivy index."""
    folder = shared_data / "chorus-electronics"
    judgments = select_split(chorus.load_judgments(folder), "chorus", "all", limit=QUERIES)
    judged = judgments.judged_products()
    products, others = [], 0
    for product in chorus.iter_products(folder, ImportReport()):
        if product.id in judged:
            products.append(product)
        elif others < OTHER_PRODUCTS:
            products.append(product)
            others += 1
    settings = Settings(home=tmp_path_factory.mktemp("home"))
    open_lexical(settings, "sub", create=True).index(products)
    return settings, judgments


def synthetic(count: int) -> list[Product]:
    return [
        Product(id=f"p{i}", title=f"Acme wireless mouse model {i}", price=Decimal("20.00"))
        for i in range(count)
    ]


def test_plan_is_stratified_seeded_and_gives_fresh_ids() -> None:
    products = synthetic(200)
    judged = {f"p{i}" for i in range(0, 200, 5)}  # 40 judged
    plan = plan_drift(products, judged | {"not-in-catalog"}, share=0.2, seed=3)
    assert len(plan.removed) == 40 and plan.judged_in_catalog == 40
    assert plan.removed_judged == 8 == len(set(plan.removed) & judged)
    assert plan_drift(products, judged, 0.2, seed=3) == plan
    assert plan_drift(products, judged, 0.2, seed=4).removed != plan.removed

    by_id = {p.id: p for p in products}
    assert len({p.id for p in plan.added}) == len(plan.added) == 40
    assert not {p.id for p in plan.added} & set(by_id)
    for new in plan.added:
        old = by_id[plan.successor_of[new.id]]
        assert new.title != old.title and new.title.split()[0] == old.title.split()[0]
        assert new.price is not None and old.price is not None
        assert abs(new.price - old.price) <= old.price * Decimal("0.1") + Decimal("0.01")


def test_plan_refuses_a_share_outside_zero_and_one() -> None:
    with pytest.raises(ValueError, match="share must be between 0 and 1"):
        plan_drift(synthetic(10), set(), share=1.0, seed=0)


def test_successor_judgments_move_each_gain_to_the_successor() -> None:
    judgments = Judgments(max_gain=3)
    query = Query.from_text("mouse")
    judgments.add(query, "a", 3)
    judgments.add(query, "b", 1)
    moved = successor_judgments(judgments, {"a-drift0": "a"})
    assert moved.qrels[query.id] == {"a-drift0": 3, "b": 1}
    assert judgments.qrels[query.id] == {"a": 3, "b": 1}


def test_raw_drift_runs_on_a_copy_and_never_returns_a_removed_product(
    catalog: tuple[Settings, Judgments], tmp_path: Path
) -> None:
    settings, judgments = catalog
    user_index = open_lexical(settings, "sub")
    count_before = user_index.count()
    options = EvalOptions("sub", "all", "raw", runs_root=tmp_path)
    outcome = run_drift(settings, options, share=0.2, seed=0, judgments=judgments)
    drift = outcome.report
    assert (
        drift.removed
        == drift.added
        == round(0.2 * drift.judged_in_catalog)
        + round(0.2 * (drift.products_before - drift.judged_in_catalog))
    )
    assert drift.removed_judged == round(0.2 * drift.judged_in_catalog) > 0
    assert drift.products_after == drift.products_before == count_before
    assert drift.removed_hits == 0 and drift.removed_still_indexed == 0
    assert drift.successor_hits > 0  # relisted products are found without retraining
    assert drift.after.means["recall@100"] < drift.before.means["recall@100"]

    # the user's index is untouched and the workspace is gone
    assert open_lexical(settings, "sub").count() == count_before
    removed = json.loads((outcome.out_dir / "drift.json").read_text())
    assert removed["removed_hits"] == 0
    assert not Path(drift.workspace).exists()
    for name in ("before.trec", "after.trec", "drift.md", "before-vs-after.png"):
        assert (outcome.out_dir / name).is_file(), name

    plain = run_eval(settings, options, judgments=judgments)
    assert drift.before.means == plain.report.means


def test_kept_workspace_holds_the_drifted_index(
    catalog: tuple[Settings, Judgments], tmp_path: Path
) -> None:
    settings, judgments = catalog
    options = EvalOptions("sub", "all", "raw", limit=5, runs_root=tmp_path)
    outcome = run_drift(
        settings, options, share=0.1, seed=1, judgments=judgments, keep_workspace=True
    )
    copy = open_lexical(Settings(home=Path(outcome.report.workspace)), "sub")
    after = {p.id for p in copy.iter_products()}  # type: ignore[attr-defined]
    assert sum(pid.endswith("-drift1") for pid in after) == outcome.report.added
    original = open_lexical(settings, "sub")
    assert not any(original.get(pid) is None for pid in list(after)[:50] if "-drift" not in pid)
    assert outcome.out_dir.name == "sub-all-raw-first5-drift10-seed1"


def test_fake_policy_drift_asks_the_writer_once_per_query(
    catalog: tuple[Settings, Judgments], tmp_path: Path
) -> None:
    settings, judgments = catalog
    asked: list[int] = []

    def fake_writer(prompts: Sequence[Prompt]) -> list[str]:
        asked.append(len(prompts))
        calls = [
            {"name": "search_products", "arguments": {"query": p.messages[-1]["content"]}}
            for p in prompts
        ]
        return [f"<tool_call>{json.dumps(call)}</tool_call>" for call in calls]

    options = EvalOptions("sub", "all", "policy", runs_root=tmp_path)
    outcome = run_drift(settings, options, judgments=judgments, writer=fake_writer)
    assert sum(asked) == QUERIES  # "after" reuses what the model wrote "before"
    assert outcome.report.removed_hits == 0
    assert outcome.report.after.tool_calls == {"valid": 1.0, "repaired": 0.0, "invalid": 0.0}


def test_dual_drift_changes_a_copy_of_the_concept_index(tmp_path: Path) -> None:
    products = synthetic(24)
    judgments = Judgments()
    for i in range(0, 24, 3):
        judgments.add(Query.from_text(f"mouse model {i}"), f"p{i}", 1)
    settings = Settings(home=tmp_path / "home")
    open_lexical(settings, "mice", create=True).index(products)
    open_concepts(settings, "mice").index(products)
    options = EvalOptions("mice", "all", "dual", runs_root=tmp_path)
    outcome = run_drift(settings, options, share=0.25, seed=0, judgments=judgments)
    drift = outcome.report
    assert drift.indexes == ["concepts", "lexical"]
    assert drift.removed == 6 and drift.removed_judged == 2
    assert drift.removed_hits == 0 and drift.successor_hits > 0
    assert open_concepts(settings, "mice").count() == 24


def test_missing_index_names_the_command(tmp_path: Path) -> None:
    judgments = Judgments()
    judgments.add(Query.from_text("mouse"), "p1", 1)
    with pytest.raises(IndexMissing, match="shopagent index --dataset nothing"):
        run_drift(
            Settings(home=tmp_path),
            EvalOptions("nothing", "all", "raw", runs_root=tmp_path),
            judgments=judgments,
        )
