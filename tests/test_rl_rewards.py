"""The Rec-R1 reward on hand-made replies: format part, NDCG part, and the live search behind it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from agent.protocol.tool_calls import ParseClass, ParsedToolCall, ToolCallParse, parse_tool_calls
from agent.protocol.tool_schemas import schema_for
from rl.rewards import (
    FORMAT_INVALID,
    FORMAT_REPAIRED,
    FORMAT_VALID,
    LiveSearch,
    SearchRewardFunc,
    combine,
    format_reward,
    search_reward,
)
from tests.catalog_samples import sample_products
from tests.rl_samples import PROSE, repaired, valid
from tools.errors import BadInput
from tools.search.backend import BackendUnavailable
from tools.search.tantivy_backend import TantivyIndex
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings

PRODUCTS_TOOL = [schema_for("search_products")]


def parse(text: str) -> ToolCallParse:
    return parse_tool_calls(text, PRODUCTS_TOOL)


class FixedRanking:
    """A search function that always answers ``ids`` and remembers the calls it got."""

    def __init__(self, *ids: str) -> None:
        self.ids = list(ids)
        self.calls: list[ParsedToolCall] = []

    def __call__(self, call: ParsedToolCall) -> list[str]:
        self.calls.append(call)
        return self.ids


@pytest.mark.parametrize(
    ("parse_class", "expected"),
    [("valid", FORMAT_VALID), ("repaired", FORMAT_REPAIRED), (ParseClass.INVALID, FORMAT_INVALID)],
)
def test_format_reward_by_parse_class(parse_class: str, expected: float) -> None:
    assert format_reward(parse_class) == expected
    assert FORMAT_INVALID < FORMAT_REPAIRED < FORMAT_VALID


def test_format_reward_refuses_an_unknown_class() -> None:
    with pytest.raises(ValueError, match="unknown parse class 'great'"):
        format_reward("great")


def test_invalid_reply_is_penalised_and_never_searched() -> None:
    search = FixedRanking("a")
    breakdown = search_reward(parse(PROSE), {"a": 1}, search)
    assert breakdown.parse_class == "invalid"
    assert (breakdown.format, breakdown.ndcg, breakdown.total) == (-1.0, 0.0, -1.0)
    assert search.calls == []


def test_valid_call_that_finds_nothing_relevant_gets_nothing() -> None:
    breakdown = search_reward(parse(valid("fire pit")), {"a": 1, "b": 1}, FixedRanking("x", "y"))
    assert breakdown.parse_class == "valid"
    assert breakdown.format == FORMAT_VALID  # recorded, but not paid: NDCG was 0
    assert breakdown.ndcg == 0.0 and breakdown.total == 0.0


def test_valid_call_with_a_perfect_ranking_gets_format_plus_one() -> None:
    search = FixedRanking("a", "b", "x")
    breakdown = search_reward(parse(valid("gas fire pit")), {"a": 1, "b": 1, "c": 0}, search)
    assert breakdown.ndcg == pytest.approx(1.0)
    assert breakdown.total == pytest.approx(1.1)
    assert search.calls[0].arguments == {"query": "gas fire pit"}


def test_repaired_call_earns_its_ndcg_without_format_credit() -> None:
    # judged a, b relevant; ranking x, a: DCG = 1/log2(3), ideal = 1 + 1/log2(3)
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    breakdown = search_reward(parse(repaired("pliers")), {"a": 1, "b": 1}, FixedRanking("x", "a"))
    assert breakdown.parse_class == "repaired"
    assert breakdown.ndcg == pytest.approx(expected)
    assert breakdown.total == pytest.approx(expected)  # 0.0 format credit + NDCG


def test_graded_gains_and_the_cutoff_at_ten() -> None:
    judged = {"a": 3, "b": 1}
    best = search_reward(parse(valid("tv")), judged, FixedRanking("a", "b"))
    swapped = search_reward(parse(valid("tv")), judged, FixedRanking("b", "a"))
    too_deep = search_reward(
        parse(valid("tv")), judged, FixedRanking(*[f"x{i}" for i in range(10)], "a")
    )
    assert best.ndcg == pytest.approx(1.0)
    assert 0 < swapped.ndcg < best.ndcg
    assert too_deep.total == 0.0


def test_arguments_the_backend_refuses_score_zero_with_the_reason() -> None:
    def refuse(call: ParsedToolCall) -> list[str]:
        raise BadInput("min_price 50 is above max_price 10")

    breakdown = search_reward(parse(valid("tv")), {"a": 1}, refuse)
    assert breakdown.total == 0.0 and breakdown.parse_class == "valid"
    assert breakdown.error == "min_price 50 is above max_price 10"


def test_a_backend_outage_is_not_turned_into_a_reward() -> None:
    def down(call: ParsedToolCall) -> list[str]:
        raise BackendUnavailable("elasticsearch is down")

    with pytest.raises(BackendUnavailable):
        search_reward(parse(valid("tv")), {"a": 1}, down)


def test_combine_rounds_and_keeps_invalid_at_the_penalty() -> None:
    assert combine("valid", 0.5).total == 0.6
    assert combine("invalid", 0.9).total == FORMAT_INVALID
    assert combine("valid", 0.5).components() == {"format": 0.1, "ndcg@10": 0.5}


# -- the live search ----------------------------------------------------------------------------


@pytest.fixture()
def toolbox(tmp_path: Path) -> SearchToolbox:
    settings = Settings(home=tmp_path / "home", lexical_backend="tantivy")
    TantivyIndex(settings.tantivy_dir("sample"), create=True).index(sample_products())
    return SearchToolbox(settings, "sample")


def test_live_search_runs_query_and_filters_like_eval(toolbox: SearchToolbox) -> None:
    search = LiveSearch(toolbox)
    mice = parse(valid("gaming mouse"))
    assert search(mice.calls[0])[:2] in (["m1", "m2"], ["m2", "m1"])
    cheap = parse(
        '<tool_call>{"name": "search_products", "arguments": '
        '{"query": "gaming mouse", "max_price": 30}}</tool_call>'
    )
    assert search(cheap.calls[0]) == ["m1"]
    assert search.last is not None and search.last.hits[0].product_id == "m1"


def test_live_search_refusals_become_zero_rewards(toolbox: SearchToolbox) -> None:
    search = LiveSearch(toolbox)
    backwards = parse(
        '<tool_call>{"name": "search_products", "arguments": '
        '{"query": "mouse", "min_price": 50, "max_price": 10}}</tool_call>'
    )
    assert search_reward(backwards, {"m1": 1}, search).total == 0.0
    empty = parse('<tool_call>{"name": "search_products", "arguments": {"query": " "}}</tool_call>')
    assert (
        search_reward(empty, {"m1": 1}, search).error
        == "search_products needs a query with at least one word"
    )
    other = ParsedToolCall("send_email", {"to": "x"}, "call_0")
    with pytest.raises(ValueError, match="not a search tool"):
        search(other)


def test_grpo_reward_function_scores_text_completions(toolbox: SearchToolbox) -> None:
    reward = SearchRewardFunc(LiveSearch(toolbox))
    logged: dict[str, float] = {}
    judged = json.dumps({"m1": 1, "m2": 1})
    tools = json.dumps(PRODUCTS_TOOL)
    totals = reward(
        prompts=["p"] * 3,
        completions=[valid("gaming mouse"), PROSE, [{"role": "assistant", "content": valid("tv")}]],
        judged=[judged] * 3,
        tools=[tools] * 3,
        log_metric=lambda name, value: logged.__setitem__(name, value),
    )
    assert totals[0] == pytest.approx(1.1)  # m1 and m2 are the top two
    assert totals[1] == -1.0
    assert totals[2] == 0.0  # a TV search finds no relevant mouse
    assert logged["rewards/valid_rate"] == pytest.approx(2 / 3)
    assert reward.__name__ == "search_reward"
