"""Splits are fixed by query text: deterministic, disjoint, and unmoved when data is added."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.catalog import chorus, homedepot
from tools.catalog.judgments import Judgments, Query
from tools.catalog.splits import (
    DEV_SIZE,
    bucket,
    select_split,
    split_names,
    split_queries,
)


@pytest.fixture(scope="module")
def homedepot_judgments(shared_data: Path) -> Judgments:
    return homedepot.load_judgments(shared_data / "homedepot")


@pytest.fixture(scope="module")
def chorus_judgments(shared_data: Path) -> Judgments:
    return chorus.load_judgments(shared_data / "chorus-electronics")


def judged(texts: list[str]) -> Judgments:
    judgments = Judgments()
    for text in texts:
        judgments.add(Query.from_text(text), "p1", 1)
    return judgments


def ids(queries: list[Query]) -> set[str]:
    return {q.id for q in queries}


def test_homedepot_splits_are_disjoint_and_dev_has_1000(homedepot_judgments: Judgments) -> None:
    train, dev, test = (
        ids(split_queries(homedepot_judgments, "homedepot", s)) for s in ("train", "dev", "test")
    )
    assert len(dev) == DEV_SIZE
    assert not train & dev and not train & test and not dev & test
    scorable = ids(homedepot_judgments.with_positive())
    assert train | dev | test <= scorable
    assert len(train) > 6 * len(dev)  # train keeps the bulk of the queries


def test_chorus_all_is_every_positive_query_and_halves_partition_it(
    chorus_judgments: Judgments,
) -> None:
    every = ids(split_queries(chorus_judgments, "chorus", "all"))
    dev = ids(split_queries(chorus_judgments, "chorus", "dev"))
    test = ids(split_queries(chorus_judgments, "chorus", "test"))
    assert every == ids(chorus_judgments.with_positive())
    assert dev | test == every and not dev & test
    assert abs(len(dev) - len(test)) < len(every) // 4


def test_a_query_keeps_its_split_when_other_queries_arrive() -> None:
    base = [f"cordless drill {i}" for i in range(300)]
    grown = base + [f"paint roller {i}" for i in range(700)]
    for split in ("train", "test"):
        before = ids(split_queries(judged(base), "homedepot", split))
        after = ids(split_queries(judged(grown), "homedepot", split))
        assert before <= after


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=20).filter(str.strip), min_size=1, max_size=60),
    st.lists(st.text(min_size=1, max_size=20).filter(str.strip), max_size=60),
)
def test_train_and_dev_never_overlap_across_data_versions(old: list[str], new: list[str]) -> None:
    """A query in train in one version of the data is in dev in no version."""
    train_old = ids(split_queries(judged(old), "homedepot", "train"))
    dev_new = ids(split_queries(judged(old + new), "homedepot", "dev"))
    train_new = ids(split_queries(judged(old + new), "homedepot", "train"))
    dev_old = ids(split_queries(judged(old), "homedepot", "dev"))
    assert not train_old & dev_new
    assert not train_new & dev_old


def test_bucket_ignores_case_and_spacing_but_not_the_salt() -> None:
    assert bucket("Cordless  Drill") == bucket("cordless drill")
    assert bucket("cordless drill") != bucket("cordless drill", salt="other")
    assert 0 <= bucket("x") < 1


def test_limit_is_a_stable_prefix(chorus_judgments: Judgments) -> None:
    first = select_split(chorus_judgments, "chorus", "all", limit=10)
    again = select_split(chorus_judgments, "chorus", "all", limit=20)
    assert len(first) == 10
    assert set(first.queries) <= set(again.queries)
    assert all(first.qrels[qid] == chorus_judgments.qrels[qid] for qid in first.queries)


def test_queries_without_a_positive_judgment_are_left_out() -> None:
    judgments = judged(["drill"])
    judgments.add(Query.from_text("hammer"), "p2", 0)
    assert [q.text for q in split_queries(judgments, "chorus", "all")] == ["drill"]


def test_unknown_split_names_the_choices() -> None:
    assert split_names("homedepot") == ("train", "dev", "test")
    with pytest.raises(ValueError, match=r"unknown split 'train' for chorus.*'all'"):
        split_queries(judged(["drill"]), "chorus", "train")
    with pytest.raises(ValueError, match="limit"):
        select_split(judged(["drill"]), "chorus", "all", limit=0)


def test_a_split_with_nothing_to_score_is_refused() -> None:
    """eval, drift and collect all run a split; none can do anything with an empty one."""
    nothing_relevant = Judgments()
    nothing_relevant.add(Query.from_text("hammer"), "p2", 0)
    with pytest.raises(ValueError, match="chorus all: no query with a positive judgment"):
        select_split(nothing_relevant, "chorus", "all")
    assert len(select_split(judged(["drill"]), "chorus", "all")) == 1
