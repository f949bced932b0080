"""The one registry of strategies (``agent.protocol.strategies``) against everything that reads
it: the CLI, the eval suite's builder, collect, the writer prompts and the tool path. Every
strategy is built on a real tiny tantivy + Chroma toolbox and run once, and what it opened and
which retrieval path it took are compared with what the registry declares, so a table that
drifted from the registry fails here."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any

import pytest
import typer
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

import cli
from agent.protocol.strategies import (
    COLLECT_STRATEGIES,
    EXPAND,
    GET,
    MODEL_STRATEGIES,
    PLAIN_STRATEGIES,
    PROMPT_STYLES,
    STRATEGIES,
    STRATEGY_NAMES,
    TOOL_PATHS,
    WRITER_STRATEGIES,
    StrategySpec,
    WriterSpec,
    strategy_spec,
)
from agent.protocol.tool_schemas import (
    SEARCH_CONCEPTS,
    SEARCH_PRODUCTS,
    SEARCH_TITLES,
    TOOL_NAMES,
    schema_for,
)
from agent.protocol.tool_search import plan_tool_search
from agent.protocol.writer_prompts import EXPAND_SYSTEM_PROMPT, Prompt, strategy_prompt
from evals import strategies as eval_strategies
from evals.strategies import build_strategy
from rl.rollouts import STRATEGY_TOOLS, CollectConfig
from tests.catalog_samples import sample_toolbox
from tools.catalog.product import Product
from tools.errors import BadInput
from tools.search.request import SearchFilters, SearchRequest
from tools.search.results import SearchResults
from tools.search_tools import INDEXES, RETRIEVAL_PATHS, SearchToolbox

# -- the registry itself ----------------------------------------------------------------------


def test_the_registry_is_frozen_and_its_name_tuples_are_derived_from_it() -> None:
    assert tuple(STRATEGIES) == STRATEGY_NAMES == tuple(s.name for s in STRATEGIES.values())
    assert all(name == spec.name for name, spec in STRATEGIES.items())
    assert {n for n, s in STRATEGIES.items() if s.writer is not None} == WRITER_STRATEGIES
    assert WRITER_STRATEGIES | {n for n, s in STRATEGIES.items() if s.agent} == MODEL_STRATEGIES
    assert tuple(n for n in STRATEGY_NAMES if n not in MODEL_STRATEGIES) == PLAIN_STRATEGIES
    assert tuple(n for n in STRATEGY_NAMES if STRATEGIES[n].collect) == COLLECT_STRATEGIES
    assert set(COLLECT_STRATEGIES) <= WRITER_STRATEGIES
    with pytest.raises(FrozenInstanceError):
        STRATEGIES["raw"].path = "dense"  # type: ignore[misc]
    with pytest.raises(BadInput, match=r"unknown strategy 'bm25'; choose one of \['raw'"):
        strategy_spec("bm25")


def test_each_spec_names_a_real_path_real_indexes_and_one_way_to_search() -> None:
    for spec in STRATEGIES.values():
        assert spec.indexes and spec.indexes <= set(INDEXES), spec.name
        assert sum((spec.path is not None, spec.writer is not None, spec.agent)) == 1, spec.name
        if not spec.agent:
            assert spec.retrieval_path in RETRIEVAL_PATHS, spec.name
        if spec.writer is not None:
            assert spec.writer.style in PROMPT_STYLES
            assert spec.retrieval_path == TOOL_PATHS[spec.writer.tool]
    with pytest.raises(ValueError, match="exactly one"):
        StrategySpec("x", "", frozenset({"lexical"}), path="lexical", agent=True)
    with pytest.raises(ValueError, match="unknown retrieval path"):
        StrategySpec("x", "", frozenset({"lexical"}), path="bm25")
    with pytest.raises(ValueError, match="indexes"):
        StrategySpec("x", "", frozenset({"elasticsearch"}), path="lexical")
    with pytest.raises(ValueError, match="expand prompt"):
        WriterSpec(SEARCH_CONCEPTS, EXPAND)
    with pytest.raises(ValueError, match="not a search tool"):
        WriterSpec("get_product")


def test_every_tool_of_the_protocol_has_a_path_and_the_tool_path_takes_it() -> None:
    assert set(TOOL_PATHS) == {*TOOL_NAMES, SEARCH_TITLES}
    assert set(TOOL_PATHS.values()) <= {*RETRIEVAL_PATHS, GET}
    arguments = {
        SEARCH_PRODUCTS: {"query": "mouse"},
        SEARCH_CONCEPTS: {"concepts": ["mouse"]},
        SEARCH_TITLES: {"titles": ["a mouse"]},
        "get_product": {"product_id": "m1"},
    }
    for tool, path in TOOL_PATHS.items():
        assert plan_tool_search(tool, arguments[tool], size=5).strategy == path


# -- the CLI ----------------------------------------------------------------------------------


def _command(*path: str) -> Any:
    command: Any = typer.main.get_command(cli.app)
    for name in path:
        command = command.commands[name]
    return command


def _option(command: Any, name: str) -> Any:
    return next(p for p in command.params if p.name == name)


def _names_in(help_text: str, candidates: Sequence[str]) -> list[str]:
    return [
        n for n in candidates if re.search(rf"(^|[ ,]){re.escape(n)}( \(|[,.]| or )", help_text)
    ]


def test_the_cli_offers_the_registry_and_nothing_else() -> None:
    run_help = _option(_command("eval", "run"), "strategy").help
    assert run_help.rstrip(".").replace(" or ", ", ").split(", ") == list(STRATEGY_NAMES)
    collect_help = _option(_command("collect"), "strategy").help
    assert _names_in(collect_help, STRATEGY_NAMES) == list(COLLECT_STRATEGIES)
    for name in COLLECT_STRATEGIES:
        assert STRATEGIES[name].summary in collect_help
    assert tuple(cli.SearchTool) == RETRIEVAL_PATHS  # shopagent search --tool


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("eval", "run", "--strategy", "bm25"), "unknown strategy 'bm25'; choose one of ['raw'"),
        (("collect", "--strategy", "direct"), "unknown rollout strategy 'direct'"),
    ],
)
def test_the_cli_refuses_a_name_outside_the_registry(
    args: tuple[str, ...],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SHOPAGENT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "300")
    with pytest.raises(SystemExit) as exited:
        cli.main(list(args))
    assert exited.value.code == 1
    assert message in capsys.readouterr().err


def test_collect_accepts_exactly_the_registry_collect_strategies() -> None:
    assert set(STRATEGY_TOOLS) == set(COLLECT_STRATEGIES)
    for name in STRATEGY_NAMES:
        if STRATEGIES[name].collect:
            config = CollectConfig(strategy=name)
            assert config.tool == STRATEGIES[name].writer.tool  # type: ignore[union-attr]
        else:
            with pytest.raises(BadInput, match="unknown rollout strategy"):
                CollectConfig(strategy=name)


# -- the writer prompts -----------------------------------------------------------------------


def test_every_writer_strategy_gets_its_prompt_and_nothing_else_does(
    toolbox: SearchToolbox,
) -> None:
    for name, spec in STRATEGIES.items():
        if spec.writer is None:
            with pytest.raises(ValueError, match="no writer prompt"):
                strategy_prompt(name, "gaming mouse", toolbox)
            continue
        prompt = strategy_prompt(name, "gaming mouse", toolbox)
        assert prompt.tools == (schema_for(spec.writer.tool),), name
        system = prompt.messages[0]["content"]
        assert (system == EXPAND_SYSTEM_PROMPT) == (spec.writer.style == EXPAND), name


# -- every strategy built and run: the indexes it opens, the path it takes --------------------


@pytest.fixture(scope="module")
def toolbox(tmp_path_factory: pytest.TempPathFactory) -> SearchToolbox:
    return sample_toolbox(tmp_path_factory.mktemp("registry"), concepts=True)


class RecordingToolbox(SearchToolbox):
    """A real toolbox that records which indexes are opened and which paths are run."""

    def __init__(self, inner: SearchToolbox, lexical: Any = None) -> None:
        super().__init__(inner.settings, inner.dataset)
        self.inner = inner
        self.lexical_index = lexical
        self.opened: set[str] = set()
        self.paths: list[str] = []

    @property  # type: ignore[override]
    def lexical(self) -> Any:
        self.opened.add("lexical")
        return self.lexical_index or self.inner.lexical

    @property  # type: ignore[override]
    def concepts(self) -> Any:
        self.opened.add("concepts")
        return self.inner.concepts

    def run(self, strategy: str, request: SearchRequest) -> SearchResults:
        self.paths.append(strategy)
        return super().run(strategy, request)

    def search_concepts(
        self, concepts: Sequence[str], filters: SearchFilters, size: int
    ) -> SearchResults:
        self.paths.append("concepts")
        return super().search_concepts(concepts, filters, size)

    def lookup_titles(self, titles: Sequence[str], size: int) -> SearchResults:
        self.paths.append("direct")
        return super().lookup_titles(titles, size)


def _call(tool: str, text: str) -> str:
    arguments = {
        SEARCH_PRODUCTS: {"query": text},
        SEARCH_CONCEPTS: {"concepts": [text]},
        SEARCH_TITLES: {"titles": [text]},
    }[tool]
    return f"<tool_call>{json.dumps({'name': tool, 'arguments': arguments})}</tool_call>"


def echo_writer(prompts: Sequence[Prompt]) -> list[str]:
    """A valid call of the prompt's one tool, searching the request's first line."""
    replies = []
    for prompt in prompts:
        tool = prompt.tools[0]["function"]["name"]
        replies.append(_call(tool, str(prompt.messages[-1]["content"]).split("\n")[0]))
    return replies


class EchoChatModel(BaseChatModel):
    """Searches the shopper's words with search_products, then answers in one sentence."""

    @property
    def _llm_type(self) -> str:
        return "echo"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        return self.bind(tools=list(tools), **kwargs)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        if any(isinstance(m, ToolMessage) for m in messages):
            reply = AIMessage("Here are the closest matches.")
        else:
            last = str(next(m for m in reversed(messages) if isinstance(m, HumanMessage)).content)
            call = {"name": SEARCH_PRODUCTS, "args": {"query": last.split("\n")[0]}, "id": "c1"}
            reply = AIMessage("", tool_calls=[call])
        return ChatResult(generations=[ChatGeneration(message=reply)])


def _built(name: str, box: SearchToolbox) -> Any:
    return build_strategy(name, box, echo_writer, llm=EchoChatModel(), dataset="samples")


def test_the_builder_takes_exactly_the_registry_names(toolbox: SearchToolbox) -> None:
    assert set(eval_strategies.PLAIN_BUILDERS) == set(PLAIN_STRATEGIES)
    for name, spec in STRATEGIES.items():
        built = _built(name, toolbox)
        assert built.name == name and built.indexes == spec.indexes, name
        if spec.path is not None:
            assert built.tool == spec.path, name
        if spec.writer is not None:
            assert (built.tool, built.style) == (spec.writer.tool, spec.writer.style), name
            with pytest.raises(BadInput, match="needs a model"):
                build_strategy(name, toolbox)
    with pytest.raises(BadInput, match="needs a chat model"):
        build_strategy("agent", toolbox, echo_writer)
    with pytest.raises(BadInput, match="unknown strategy 'bm25'"):
        build_strategy("bm25", toolbox, echo_writer)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_a_strategy_opens_the_indexes_it_declares_and_runs_its_path(
    name: str, toolbox: SearchToolbox
) -> None:
    spec = STRATEGIES[name]
    box = RecordingToolbox(toolbox)
    results, trace = _built(name, box).retrieve("gaming mouse", 10)
    assert trace.error is None and results.ids, name
    if spec.agent:
        # the graph's model picks its tools: it may leave an index unopened, never open another
        assert box.opened and box.opened <= spec.indexes
        assert set(box.paths) <= set(RETRIEVAL_PATHS)
    else:
        assert box.opened == spec.indexes, name
        assert box.paths[0] == spec.retrieval_path, name


class LexicalWithoutStatistics:
    """A lexical backend that searches but exposes no term statistics (like Elasticsearch)."""

    name = "elasticsearch"

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def search(self, request: SearchRequest) -> SearchResults:
        return self.inner.search(request)

    def get(self, product_id: str) -> Product | None:
        return self.inner.get(product_id)


@pytest.mark.parametrize("name", [n for n in STRATEGY_NAMES if not STRATEGIES[n].agent])
def test_term_statistics_are_declared_by_exactly_the_strategies_that_need_them(
    name: str, toolbox: SearchToolbox
) -> None:
    box = RecordingToolbox(toolbox, lexical=LexicalWithoutStatistics(toolbox.lexical))
    if STRATEGIES[name].term_statistics:
        with pytest.raises(ValueError, match=r"term statistics|embedded tantivy"):
            _built(name, box).retrieve("gaming mouse", 10)
    else:
        results, trace = _built(name, box).retrieve("gaming mouse", 10)
        assert trace.error is None and results.ids
