"""The eval suite end to end: real tantivy over the real Chorus catalog, metrics checked
against ranx on the written run file, model strategies driven by fake writers, and the
dense strategies on a small real Chroma index."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from ranx import Qrels as RanxQrels
from ranx import Run as RanxRun
from ranx import evaluate as ranx_evaluate

from agent.protocol.writer_prompts import Prompt
from evals.records import METRIC_NAMES, EvalReport
from evals.strategies import build_strategy
from evals.suite import EvalOptions, run_eval
from tools.catalog import chorus
from tools.catalog.datasets import load_dataset
from tools.catalog.import_report import ImportReport
from tools.catalog.judgments import Judgments
from tools.catalog.product import Product
from tools.catalog.splits import select_split
from tools.metrics import Run
from tools.search.request import SearchRequest
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings
from tools.stores import open_concepts, open_lexical


@pytest.fixture(scope="module")
def chorus_judgments(chorus_settings: Settings) -> Judgments:
    return load_dataset("chorus", chorus_settings).judgments()


def tool_reply(name: str, arguments: dict[str, object]) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


class FakeWriter:
    """Writes one tool call per prompt from the shopper's text, and records its batches."""

    name = "fake"

    def __init__(self, reply: object) -> None:
        self.reply = reply
        self.batches: list[int] = []

    def __call__(self, prompts: Sequence[Prompt]) -> list[str]:
        self.batches.append(len(prompts))
        return [self.reply(str(p.messages[-1]["content"])) for p in prompts]  # type: ignore[operator]


def test_raw_on_chorus_agrees_with_ranx_on_the_written_run(
    chorus_settings: Settings, chorus_judgments: Judgments, tmp_path: Path
) -> None:
    calls: list[tuple[int, int]] = []
    outcome = run_eval(
        chorus_settings,
        EvalOptions("chorus", "all", "raw", runs_root=tmp_path),
        progress=lambda done, total: calls.append((done, total)),
    )
    report = outcome.report
    split = select_split(chorus_judgments, "chorus", "all")
    assert report.queries == len(split) == len(chorus_judgments.with_positive())
    assert calls[-1] == (len(split), len(split))

    run = Run.read_trec(outcome.run_dir / "run.trec")
    theirs = ranx_evaluate(RanxQrels(split.qrels), RanxRun(run.as_dict()), list(METRIC_NAMES))
    for metric, value in theirs.items():
        assert report.means[metric] == pytest.approx(float(value), abs=1e-9), metric
    assert report.means["ndcg@10"] > 0.5  # BM25 on Chorus is a strong baseline
    assert report.tool_calls is None
    assert 0 < report.latency_ms["p50"] <= report.latency_ms["p95"]

    assert EvalReport.read(outcome.run_dir / "report.json") == report
    assert "| raw |" in (outcome.run_dir / "report.md").read_text()
    assert "raw" in (tmp_path / "chorus-all-summary.md").read_text()
    assert (tmp_path / "chorus-all-ndcg@10.png").read_bytes().startswith(b"\x89PNG")


def tool_path_ids(settings: Settings, text: str, size: int) -> list[str]:
    """What the one tool-call path ranks for ``text``: the plain search plus the title match."""
    request = SearchRequest(text, size=size, title_match=True)
    return open_lexical(settings, "chorus").search(request).ids


def test_fake_policy_that_echoes_the_shopper_searches_the_tool_path(
    chorus_settings: Settings, chorus_judgments: Judgments, tmp_path: Path
) -> None:
    writer = FakeWriter(lambda text: tool_reply("search_products", {"query": text}))
    policy = run_eval(
        chorus_settings,
        EvalOptions("chorus", "all", "policy", limit=40, runs_root=tmp_path, batch_size=16),
        writer=writer,
        judgments=chorus_judgments,
    )
    raw = run_eval(
        chorus_settings,
        EvalOptions("chorus", "all", "raw", limit=40, runs_root=tmp_path),
        judgments=chorus_judgments,
    )
    assert writer.batches == [16, 16, 8]
    assert policy.run_dir.name == "chorus-all-policy-fake-first40"
    assert policy.report.tool_calls == {"valid": 1.0, "repaired": 0.0, "invalid": 0.0}
    assert set(policy.run.rankings) == set(raw.run.rankings)
    for qid in policy.run.rankings:
        text = policy.report.per_query[qid]["text"]
        assert policy.run.ids(qid) == tool_path_ids(chorus_settings, text, 100)
    assert not (tmp_path / "chorus-all-summary.md").exists()  # --limit runs stay out of it


def test_fake_policy_unusable_replies_score_zero_and_count_as_invalid(
    chorus_settings: Settings, chorus_judgments: Judgments, tmp_path: Path
) -> None:
    def reply(text: str) -> str:
        if len(text) % 2:
            return "I would search for " + text
        return tool_reply("search_products", {"query": text})[: -len("}}</tool_call>")] + ",}}"

    outcome = run_eval(
        chorus_settings,
        EvalOptions("chorus", "all", "policy", limit=30, runs_root=tmp_path),
        writer=FakeWriter(reply),
        judgments=chorus_judgments,
    )
    rows = outcome.report.per_query.values()
    odd = [r for r in rows if len(r["text"]) % 2]
    assert odd and all(r["parse_class"] == "invalid" for r in odd)
    assert all(r["ndcg@10"] == 0 and r["top10"] == [] and r["error"] for r in odd)
    even = [r for r in rows if not len(r["text"]) % 2]
    assert all(r["parse_class"] == "repaired" and r["written"] == r["text"] for r in even)
    rates = outcome.report.tool_calls
    assert rates is not None
    assert rates["invalid"] == pytest.approx(len(odd) / 30)
    assert rates["repaired"] == pytest.approx(len(even) / 30)


def test_fake_policy_filters_reach_the_index(chorus_settings: Settings) -> None:
    writer = FakeWriter(
        lambda text: tool_reply("search_products", {"query": "usb", "brand": "Logitech"})
    )
    strategy = build_strategy("policy", SearchToolbox(chorus_settings, "chorus"), writer)
    results, trace = strategy.retrieve("a usb thing from logitech", 20)
    assert len(results) == 20
    assert {hit.product.brand.lower() for hit in results.hits} == {"logitech"}
    assert trace.parse_class == "valid" and trace.written == "usb | brand=Logitech"
    assert trace.generation_ms >= 0 and trace.search_ms > 0


def test_fake_policy_bad_arguments_are_a_query_error_not_a_crash(
    chorus_settings: Settings,
) -> None:
    writer = FakeWriter(
        lambda text: tool_reply("search_products", {"query": text, "min_price": 90, "max_price": 9})
    )
    strategy = build_strategy("policy", SearchToolbox(chorus_settings, "chorus"), writer)
    results, trace = strategy.retrieve("cheap mouse", 10)
    assert len(results) == 0
    assert trace.error is not None and "max_price" in trace.error


class FakeAgentChatModel(BaseChatModel):
    """Searches the shopper's words with search_products, then answers in one sentence."""

    model_name: str = "fake-agent"

    @property
    def _llm_type(self) -> str:
        return "fake-agent"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        return self.bind(tools=list(tools), **kwargs)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        if any(isinstance(m, ToolMessage) for m in messages):
            reply = AIMessage("Here are the closest matches.")
        else:
            last = str(next(m for m in reversed(messages) if isinstance(m, HumanMessage)).content)
            text = last.split("\n")[0]  # the writer prompt's first line: the shopper's words
            call = {"name": "search_products", "args": {"query": text}, "id": "c1"}
            reply = AIMessage("", tool_calls=[call])
        return ChatResult(generations=[ChatGeneration(message=reply)])


def test_fake_agent_runs_the_graph_and_is_scored_on_what_it_shows(
    chorus_settings: Settings, chorus_judgments: Judgments, tmp_path: Path
) -> None:
    options = EvalOptions("chorus", "all", "agent", limit=8, runs_root=tmp_path)
    agent = run_eval(chorus_settings, options, llm=FakeAgentChatModel(), judgments=chorus_judgments)
    raw_options = replace(options, strategy="raw")
    raw = run_eval(chorus_settings, raw_options, judgments=chorus_judgments)
    assert agent.run_dir.name == "chorus-all-agent-fake-agent-first8"
    assert agent.report.tool_calls == {"valid": 1.0, "repaired": 0.0, "invalid": 0.0}
    for qid in raw.run.rankings:
        row = agent.report.per_query[qid]
        # one search of 10 through the tool path, its top 5 shown first
        assert agent.run.ids(qid) == tool_path_ids(chorus_settings, row["text"], 10)
        # the shopper's words, as the fake wrote them; a brand named ("dell") is also a filter
        assert json.loads(row["written"])["query"].lower() == row["text"]
        assert row["generation_ms"] >= 0 and row["search_ms"] > 0


def test_unknown_names_and_missing_models_are_clear_errors(chorus_settings: Settings) -> None:
    toolbox = SearchToolbox(chorus_settings, "chorus")
    with pytest.raises(ValueError, match="needs a chat model"):
        build_strategy("agent", toolbox)
    with pytest.raises(ValueError, match="unknown strategy 'bm25'"):
        build_strategy("bm25", toolbox)
    with pytest.raises(ValueError, match="needs a model"):
        build_strategy("concepts", toolbox)


def test_model_strategy_without_a_stored_model_says_how_to_get_one(
    chorus_settings: Settings, chorus_judgments: Judgments, tmp_path: Path
) -> None:
    settings = replace(chorus_settings, home=tmp_path / "empty-home")
    with pytest.raises(LookupError, match="shopagent model init"):
        run_eval(settings, EvalOptions("chorus", "all", "policy"), judgments=chorus_judgments)


# -- the dense strategies on a small real Chroma index ----------------------------------------

SMALL_QUERIES = 4
PRODUCTS_PER_QUERY = 6


@pytest.fixture(scope="module")
def small_catalog(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, Judgments]:
    """About 24 judged Chorus products in tantivy and Chroma, with their queries' judgments."""
    folder = shared_data / "chorus-electronics"
    judgments = chorus.load_judgments(folder)
    queries = select_split(judgments, "chorus", "all", limit=SMALL_QUERIES)
    wanted = {
        pid for judged in queries.qrels.values() for pid in sorted(judged)[:PRODUCTS_PER_QUERY]
    }
    products = [p for p in chorus.iter_products(folder, ImportReport()) if p.id in wanted]
    settings = Settings(home=tmp_path_factory.mktemp("small"))
    open_lexical(settings, "small", create=True).index(products)
    open_concepts(settings, "small").index(products)
    return settings, queries


def small_products(settings: Settings) -> list[Product]:
    return list(open_lexical(settings, "small").iter_products())  # type: ignore[attr-defined]


def test_fake_concepts_echo_equals_dual_and_hybrid_fuses_both(
    small_catalog: tuple[Settings, Judgments], tmp_path: Path
) -> None:
    settings, judgments = small_catalog
    outcomes = {
        name: run_eval(
            settings,
            EvalOptions("small", "all", name, runs_root=tmp_path),
            judgments=judgments,
            writer=FakeWriter(lambda text: tool_reply("search_concepts", {"concepts": [text]})),
        )
        for name in ("raw", "dual", "hybrid", "concepts")
    }
    dual, concepts = outcomes["dual"].run, outcomes["concepts"].run
    assert {q: concepts.ids(q) for q in dual.rankings} == {q: dual.ids(q) for q in dual.rankings}
    raw, hybrid = outcomes["raw"].run, outcomes["hybrid"].run
    for qid in hybrid.rankings:
        assert set(hybrid.ids(qid)) == set(raw.ids(qid)) | set(dual.ids(qid))
    for name, outcome in outcomes.items():
        assert outcome.report.queries == SMALL_QUERIES, name
        assert outcome.report.means["ndcg@100"] > 0, name
    summary = (tmp_path / "small-all-summary.md").read_text()
    assert all(f"| {name} |" in summary for name in outcomes)


def test_fake_direct_titles_find_the_named_products(
    small_catalog: tuple[Settings, Judgments],
) -> None:
    settings, _ = small_catalog
    products = small_products(settings)[:3]
    titles = {p.id: p.title for p in products}
    writer = FakeWriter(
        lambda text: tool_reply("search_titles", {"titles": [titles[text], "no such product"]})
    )
    strategy = build_strategy("direct", SearchToolbox(settings, "small"), writer)
    answers = strategy.retrieve_batch(list(titles), 5)  # type: ignore[attr-defined]
    assert writer.batches == [3]
    for (results, trace), product_id in zip(answers, titles, strict=True):
        assert results.ids[0] == product_id
        assert trace.parse_class == "valid" and titles[product_id] in trace.written
