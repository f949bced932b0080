"""Reciprocal Rank Fusion against scores worked out by hand."""

from __future__ import annotations

import pytest

from tools.catalog.product import Product
from tools.search.fusion import reciprocal_rank_fusion
from tools.search.results import SearchResults, ranked


def results(backend: str, *ids: str) -> SearchResults:
    products = [Product(id=pid, title=f"{backend} {pid}") for pid in ids]
    return SearchResults(
        hits=ranked([(p, 10.0 - i) for i, p in enumerate(products)]), backend=backend
    )


def test_two_lists_scores_and_order_match_hand_computation() -> None:
    lexical = results("lexical", "a", "b", "c")
    concepts = results("concepts", "c", "a", "d")

    fused = reciprocal_rank_fusion([lexical, concepts], k=60, size=10)

    # a: 1/61 + 1/62, c: 1/63 + 1/61, b: 1/62, d: 1/63
    assert fused.ids == ["a", "c", "b", "d"]
    assert [hit.score for hit in fused.hits] == pytest.approx(
        [1 / 61 + 1 / 62, 1 / 63 + 1 / 61, 1 / 62, 1 / 63]
    )
    assert [hit.rank for hit in fused.hits] == [1, 2, 3, 4]
    assert fused.backend == "rrf(lexical+concepts)"
    assert fused.total == 4


def test_weights_can_reorder() -> None:
    lexical = results("lexical", "a", "b")
    concepts = results("concepts", "b", "a")

    fused = reciprocal_rank_fusion([lexical, concepts], k=1, weights=[1.0, 3.0])

    # a: 1/2 + 3/3 = 1.5; b: 1/3 + 3/2 = 1.8333
    assert fused.ids == ["b", "a"]
    assert [hit.score for hit in fused.hits] == pytest.approx([1 / 3 + 3 / 2, 1 / 2 + 3 / 3])
    assert fused.detail["weights"] == [1.0, 3.0]


def test_k_zero_is_plain_reciprocal_rank() -> None:
    fused = reciprocal_rank_fusion([results("x", "a", "b", "c")], k=0)
    assert [hit.score for hit in fused.hits] == pytest.approx([1.0, 1 / 2, 1 / 3])


def test_ties_break_by_best_rank_then_first_appearance() -> None:
    first = results("one", "x", "p")
    second = results("two", "y", "q")
    # x and y tie at 1/61 (rank 1 each) -> x came first; p and q tie at 1/62 -> p first.
    fused = reciprocal_rank_fusion([first, second])
    assert fused.ids == ["x", "y", "p", "q"]

    # m (ranks 2 and 2) beats n only by score; o (rank 1 once) ties nobody.
    third = results("three", "o", "m")
    fourth = results("four", "n", "m")
    fused = reciprocal_rank_fusion([third, fourth], k=60)
    assert fused.ids[0] == "m"  # 2/62 > 1/61


def test_size_truncates_but_total_counts_every_distinct_product() -> None:
    fused = reciprocal_rank_fusion([results("a", "1", "2", "3"), results("b", "4", "1")], size=2)
    assert len(fused) == 2
    assert fused.total == 4


def test_a_product_repeated_in_one_list_counts_once_and_keeps_the_first_record() -> None:
    repeated = results("a", "p", "p", "q")
    fused = reciprocal_rank_fusion([repeated])
    assert fused.ids == ["p", "q"]
    assert fused.hits[0].score == pytest.approx(1 / 61)
    assert fused.hits[1].score == pytest.approx(1 / 63)
    assert fused.hits[0].product.title == "a p"


def test_same_backend_named_once_and_took_ms_adds_up() -> None:
    one = SearchResults(hits=results("concepts", "a").hits, backend="concepts", took_ms=3.0)
    two = SearchResults(hits=results("concepts", "b").hits, backend="concepts", took_ms=4.0)
    fused = reciprocal_rank_fusion([one, two])
    assert fused.backend == "rrf(concepts)"
    assert fused.took_ms >= 7.0


def test_empty_lists_fuse_to_nothing() -> None:
    fused = reciprocal_rank_fusion([results("a"), results("b")])
    assert fused.hits == []
    assert fused.total == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"result_lists": []}, "at least one"),
        ({"k": -1}, "k must not be negative"),
        ({"size": 0}, "size must be at least 1"),
        ({"weights": [1.0]}, "1 weights for 2 result lists"),
        ({"weights": [1.0, -1.0]}, "must not be negative"),
    ],
)
def test_bad_arguments_are_one_line_errors(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"result_lists": [results("a", "1"), results("b", "2")]}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        reciprocal_rank_fusion(**arguments)  # type: ignore[arg-type]
