"""The chat's search per dataset: keywords alone, or fused with the concept index, as measured.

What must hold:

- the record (``tools.settings.search_choice``) round-trips, is written atomically, and a
  damaged one is one clear line (``read_search_choice``) or ignored with a warning
  (``chat_search``), never a crash; no record is keywords only;
- the tool path fuses only when asked: on the sample catalog (real tantivy, real Chroma) a
  product only the dense index finds appears, filters and the price order hold, and a concept
  index that cannot answer leaves the keyword ranking, silently;
- the ``fused`` eval strategy is exactly that tool path, and refuses a concept index that
  cannot answer instead of measuring keywords under its name;
- ``eval choose-search`` on a fixture dataset turns fusion on only when the interval lies
  above 0, and writes the record the chat reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.conversation.state import AgentLimits
from agent.conversation.tool_node import AgentTools
from agent.protocol.tool_schemas import SEARCH_PRODUCTS
from agent.protocol.tool_search import plan_tool_search, search_tool_call
from evals.choose_search import choice_table, choose_search
from evals.strategies import build_strategy
from tests.catalog_samples import sample_toolbox
from tools.catalog.judgments import Judgments, Query
from tools.errors import BadInput
from tools.search.backend import IndexMissing
from tools.search.chroma_build_state import IndexBuilding
from tools.search.request import SearchFilters
from tools.search.results import SearchResults
from tools.search_tools import CONCEPTS_SKIPPED, SearchToolbox
from tools.settings.config import Settings
from tools.settings.search_choice import (
    FUSED,
    KEYWORDS,
    SEARCH_CHOICE_FILE,
    BadSearchChoice,
    SearchChoice,
    chat_search,
    decided_search,
    read_search_choice,
    search_choice_path,
    write_search_choice,
)

DATASET = "samples"
#: Requests whose words no sample product holds: only the dense index finds the product.
DENSE_ONLY = {"earphones": "h1", "music on the go": "s1", "clicky typing board": "k1"}


def a_choice(**changes: Any) -> SearchChoice:
    choice = SearchChoice(
        dataset=DATASET,
        search=FUSED,
        split="dev",
        queries=63,
        keywords=0.6690,
        fused=0.6870,
        delta=0.0180,
        ci_low=0.0041,
        ci_high=0.0312,
        confidence=0.95,
        wins=22,
        ties=24,
        losses=17,
        date="2026-12-07T23:40:00+00:00",
        command=f"shopagent eval choose-search --dataset {DATASET} --split dev",
        catalog_version="20261207T105949.430492Z",
    )
    return replace(choice, **changes)


# -- the record --------------------------------------------------------------------------------


def test_a_choice_round_trips_through_its_file(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert read_search_choice(settings, DATASET) is None  # no record: keywords only
    path = write_search_choice(settings, a_choice())
    assert path == settings.index_dir(DATASET) / SEARCH_CHOICE_FILE
    assert read_search_choice(settings, DATASET) == a_choice()
    assert json.loads(path.read_text(encoding="utf-8"))["search"] == FUSED
    assert [p.name for p in path.parent.iterdir()] == [SEARCH_CHOICE_FILE]  # no temp file left
    kept = write_search_choice(settings, a_choice(search=KEYWORDS, ci_low=-0.01, delta=0.002))
    assert read_search_choice(settings, DATASET).search == KEYWORDS  # type: ignore[union-attr]
    assert kept == path


def test_the_rule_fuses_only_when_the_whole_interval_is_above_zero() -> None:
    assert decided_search(0.0001) == FUSED
    assert decided_search(0.0) == KEYWORDS
    assert decided_search(-0.03) == KEYWORDS


def test_the_line_says_the_search_and_the_numbers_that_chose_it() -> None:
    assert a_choice().line() == (
        "search: keywords + concepts (chosen on samples dev, 63 queries: "
        "NDCG@10 +0.018, 95% CI [+0.004, +0.031])"
    )
    lost = a_choice(search=KEYWORDS, delta=-0.046, ci_low=-0.0587, ci_high=-0.0336, queries=1000)
    lost = replace(lost, wins=251, ties=355, losses=394)
    assert lost.line() == (
        "search: keywords (chosen on samples dev, 1,000 queries: "
        "concepts NDCG@10 -0.046, 95% CI [-0.059, -0.034])"
    )


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"{not json", "Expecting property name"),
        (b"\xff\xfe garbage", "can't decode"),
        (b"[]", "not a JSON object"),
        (b"{}", "version must be 1"),
        (b"", "Expecting value"),
    ],
)
def test_a_corrupt_file_is_one_line_naming_it(tmp_path: Path, content: bytes, said: str) -> None:
    settings = Settings(home=tmp_path)
    path = search_choice_path(settings, DATASET)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(BadSearchChoice) as raised:
        read_search_choice(settings, DATASET)
    message = str(raised.value)
    assert message.startswith(str(path)) and said in message and "\n" not in message


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"search": "concepts"}, "search must be one of"),
        ({"search": FUSED, "ci_low": -0.01}, "disagrees with its interval"),
        ({"search": KEYWORDS}, "disagrees with its interval"),  # the CI says fuse
        ({"delta": float("nan")}, "delta must be between"),
        ({"keywords": "0.7"}, "keywords must be a number"),
        ({"queries": True}, "queries must be a whole number"),
        ({"queries": 0}, "queries must be a whole number"),
        ({"wins": 5}, "do not add up"),
        ({"ci_low": 0.05, "ci_high": 0.01}, "above ci_high"),
        ({"dataset": "chorus"}, "not 'samples'"),
        ({"date": "yesterday"}, "ISO 8601"),
        ({"command": ""}, "command must be a non-empty string"),
        ({"metric": "mrr"}, "metric must be"),
        ({"extra": 1}, "unknown keys ['extra']"),
        ({"version": 2}, "version must be 1"),
    ],
)
def test_a_record_that_does_not_hold_together_is_refused(
    tmp_path: Path, change: dict[str, Any], said: str
) -> None:
    settings = Settings(home=tmp_path)
    path = write_search_choice(settings, a_choice())
    data = {**json.loads(path.read_text(encoding="utf-8")), **change}
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(BadSearchChoice, match=said.replace("[", r"\[").replace("]", r"\]")):
        read_search_choice(settings, DATASET)


def test_an_oversized_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    path = search_choice_path(settings, DATASET)
    path.parent.mkdir(parents=True)
    path.write_bytes(b" " * 100_000)
    with pytest.raises(BadSearchChoice, match="larger than"):
        read_search_choice(settings, DATASET)


def test_the_chat_ignores_a_damaged_record_with_a_warning_and_searches_by_keywords(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path)
    none = chat_search(settings, DATASET)
    assert (none.fuse_concepts, none.line, none.warning) == (False, "search: keywords", None)

    write_search_choice(settings, a_choice())
    chosen = chat_search(settings, DATASET)
    assert chosen.fuse_concepts and chosen.line == a_choice().line() and chosen.warning is None

    search_choice_path(settings, DATASET).write_text("{broken", encoding="utf-8")
    damaged = chat_search(settings, DATASET)
    assert (damaged.fuse_concepts, damaged.line) == (False, "search: keywords")
    assert damaged.warning is not None and "\n" not in damaged.warning
    assert SEARCH_CHOICE_FILE in damaged.warning and "choose-search --dataset samples" in (
        damaged.warning
    )


def test_writing_refuses_a_choice_that_would_not_read_back(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="disagrees"):
        write_search_choice(Settings(home=tmp_path), a_choice(ci_low=-0.2))
    assert not search_choice_path(Settings(home=tmp_path), DATASET).exists()


# -- the fused tool path on the sample catalog (real tantivy, real Chroma) ----------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("choice") / "home"
    sample_toolbox(path, concepts=True)  # both indexes under the home, as `index` builds them
    return path


@pytest.fixture()
def toolbox(home: Path) -> SearchToolbox:
    return SearchToolbox(Settings(home=home), DATASET)


def searched(box: SearchToolbox, fuse: bool, **arguments: Any) -> SearchResults:
    return search_tool_call(SEARCH_PRODUCTS, arguments, box, size=10, fuse_concepts=fuse)[1]


@pytest.mark.parametrize(("text", "product"), sorted(DENSE_ONLY.items()))
def test_a_product_only_the_dense_index_finds_appears_when_fused(
    toolbox: SearchToolbox, text: str, product: str
) -> None:
    assert product not in searched(toolbox, False, query=text).ids
    assert searched(toolbox, True, query=text).ids[0] == product


def test_fusion_keeps_the_keyword_hits_and_adds_the_dense_ones(toolbox: SearchToolbox) -> None:
    keywords = searched(toolbox, False, query="gaming earphones").ids
    fused = searched(toolbox, True, query="gaming earphones").ids
    assert keywords and set(keywords) < set(fused)
    assert "h1" in fused and "h1" not in keywords


def test_the_chat_tool_fuses_only_when_asked(toolbox: SearchToolbox) -> None:
    def shown(fuse: bool) -> list[str]:
        tools = AgentTools(toolbox, AgentLimits(), fuse_concepts=fuse).as_tools()
        tool = next(t for t in tools if t.name == SEARCH_PRODUCTS)
        call = {"type": "tool_call", "name": SEARCH_PRODUCTS, "args": {"query": "earphones"}}
        message = tool.invoke({**call, "id": "1"})
        return [p["id"] for p in message.artifact["products"]]

    assert "h1" not in shown(False)
    assert shown(True)[0] == "h1"


def test_filters_and_the_price_order_hold_on_the_fused_path(toolbox: SearchToolbox) -> None:
    under = searched(toolbox, True, query="earphones", max_price=100)
    prices = [h.product.price for h in under.hits]
    assert prices and all(price is not None and price <= 100 for price in prices)
    assert "h1" not in under.ids  # $279
    sony = searched(toolbox, True, query="earphones", brand="Sony")
    assert sony.ids == ["h1"]
    cheapest = searched(toolbox, True, query="mouse", sort="price_asc")
    prices = [h.product.price for h in cheapest.hits if h.product.price is not None]
    assert len(prices) > 1 and prices == sorted(prices)
    assert cheapest.detail.get("sort") == "price_asc"


class NotReady:
    """A concept index that cannot answer: still building, or never built."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def search_dense(
        self, text: str, filters: SearchFilters | None = None, size: int = 10
    ) -> SearchResults:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [IndexBuilding("concept index still building (120 of 8 products)"), IndexMissing("no index")],
    ids=["building", "missing"],
)
def test_a_concept_index_that_cannot_answer_leaves_the_keyword_ranking(
    home: Path, error: Exception
) -> None:
    box = SearchToolbox(Settings(home=home), DATASET)
    keywords = searched(box, False, query="gaming mouse")
    box.__dict__["concepts"] = NotReady(error)
    fused = searched(box, True, query="gaming mouse")
    assert fused.ids == keywords.ids and fused.detail[CONCEPTS_SKIPPED] == str(error)
    with pytest.raises(type(error)):  # the strict path an eval of `hybrid` runs
        box.run("hybrid", plan_tool_search(SEARCH_PRODUCTS, {"query": "mouse"}, size=10).request)


def test_the_fused_strategy_is_the_tool_path_with_fusion(toolbox: SearchToolbox) -> None:
    strategy = build_strategy("fused", toolbox)
    for text in [*DENSE_ONLY, "gaming mouse", "wireless headphones"]:
        results, trace = strategy.retrieve(text, 10)
        through_the_tool = searched(toolbox, True, query=toolbox.respell(text))
        assert results.ids == through_the_tool.ids, text
        assert trace.error is None


def test_the_fused_strategy_refuses_a_concept_index_that_cannot_answer(home: Path) -> None:
    box = SearchToolbox(Settings(home=home), DATASET)
    box.__dict__["concepts"] = NotReady(IndexBuilding("concept index still building (starting)"))
    with pytest.raises(BadInput, match="'fused' strategy needs the samples concept index"):
        build_strategy("fused", box)


# -- eval choose-search on the fixture dataset --------------------------------------------------


def judged(pairs: Sequence[tuple[str, str]]) -> Judgments:
    judgments = Judgments()
    for text, product in pairs:
        judgments.add(Query.from_text(text), product, 1)
    return judgments


def test_choose_search_turns_fusion_on_where_the_interval_is_above_zero(
    home: Path, tmp_path: Path
) -> None:
    settings = Settings(home=home)
    seen: set[str] = set()
    outcome = choose_search(
        settings,
        DATASET,
        command="shopagent eval choose-search --dataset samples --split all",
        split="all",
        runs_root=tmp_path,
        judgments=judged(sorted(DENSE_ONLY.items())),
        progress=lambda label, done, total: seen.add(label),
    )
    choice = outcome.choice
    assert choice.search == FUSED and choice.ci_low > 0 and choice.keywords == 0.0
    assert (choice.queries, choice.wins, choice.losses, choice.split) == (3, 3, 0, "all")
    assert outcome.path == search_choice_path(settings, DATASET)
    assert read_search_choice(settings, DATASET) == choice
    assert chat_search(settings, DATASET).fuse_concepts
    assert seen == {"copy", "fused"}
    assert (tmp_path / "samples-all-copy" / "report.json").is_file()
    assert (outcome.compare_dir / "compare.json").is_file()
    assert "keywords + concepts (fused)" in str(choice_table(choice).rows)


def test_choose_search_keeps_keywords_where_fusion_does_not_help(
    home: Path, tmp_path: Path
) -> None:
    settings = Settings(home=home)
    outcome = choose_search(
        settings,
        DATASET,
        command="shopagent eval choose-search --dataset samples --split all",
        split="all",
        runs_root=tmp_path,
        judgments=judged([("toner cartridge", "p1"), ("gaming keyboard", "k1")]),
    )
    assert outcome.choice.search == KEYWORDS and outcome.choice.ci_low <= 0
    assert not chat_search(settings, DATASET).fuse_concepts
    assert outcome.choice.line().startswith("search: keywords (chosen on samples all, 2 queries")


def test_the_command_is_an_eval_subcommand() -> None:
    from cli import app

    result = CliRunner().invoke(app, ["eval", "choose-search", "--help"])
    assert result.exit_code == 0
    assert "--dataset" in result.output and "--split" in result.output
