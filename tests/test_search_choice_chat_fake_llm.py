"""The chat shows the dataset's search and searches that way, driven by a fake chat model.

The search choice (``tools.settings.search_choice``) is read once at start: its line is on the
first screen and under ``/filters``, and with concepts chosen the chat's ``search_products``
shows a product that only the concept index finds. The lexical index is the real tantivy; the
concept index is a fake that knows one product, so Chroma and MiniLM stay out of this test.
"""

from __future__ import annotations

from collections.abc import Sequence
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from rich.console import Console

from agent.conversation.session import ChatSession
from agent.conversation.state import FinalAnswer, ToolCallFinished
from agent.terminal.chat_loop import ChatLoop
from tests.catalog_samples import sample_products
from tools.search.request import SearchFilters
from tools.search.results import SearchResults, ranked
from tools.search.tantivy_backend import TantivyIndex
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings
from tools.settings.search_choice import (
    FUSED,
    SearchChoice,
    chat_search,
    search_choice_path,
    write_search_choice,
)

DATASET = "samples"


class FakeSearchingModel(BaseChatModel):
    """Searches for earphones, then says it found something."""

    @property
    def _llm_type(self) -> str:
        return "fake-searching"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        return self.bind(tools=list(tools), **kwargs)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        if not any(m.type == "tool" for m in messages):
            call = {"name": "search_products", "args": {"query": "earphones"}, "id": "c1"}
            reply = AIMessage("", tool_calls=[call])
        else:
            reply = AIMessage("Here is what I found.")
        return ChatResult(generations=[ChatGeneration(message=reply)])


class OneProductConcepts:
    """A concept index whose dense search finds the Sony headphones for any request."""

    name = "concepts"

    def __init__(self) -> None:
        self.product = next(p for p in sample_products() if p.id == "h1")

    def search_dense(
        self, text: str, filters: SearchFilters | None = None, size: int = 10
    ) -> SearchResults:
        hits = [] if filters and not filters.matches(self.product) else [(self.product, 0.9)]
        return SearchResults(hits=ranked(hits), backend="dense")

    def search_concepts(
        self, concepts: Sequence[str], filters: SearchFilters | None = None, size: int = 10
    ) -> SearchResults:
        return self.search_dense(" ".join(concepts), filters, size)

    def get(self, product_id: str) -> None:
        return None


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture()
def toolbox(settings: Settings) -> SearchToolbox:
    box = SearchToolbox(settings, DATASET)
    lexical = TantivyIndex(None, create=True)
    lexical.index(sample_products())
    box.__dict__["lexical"] = lexical
    box.__dict__["concepts"] = OneProductConcepts()
    return box


def fused_choice() -> SearchChoice:
    return SearchChoice(
        dataset=DATASET,
        search=FUSED,
        split="dev",
        queries=63,
        keywords=0.669,
        fused=0.687,
        delta=0.018,
        ci_low=0.004,
        ci_high=0.031,
        confidence=0.95,
        wins=22,
        ties=24,
        losses=17,
        date="2026-12-07T23:40:00+00:00",
        command="shopagent eval choose-search --dataset samples",
    )


def open_chat(settings: Settings, toolbox: SearchToolbox) -> ChatSession:
    """As ``run_chat`` wires it: the choice read at start decides the search."""
    search = chat_search(settings, DATASET)
    return ChatSession.open(
        settings,
        DATASET,
        FakeSearchingModel(),
        toolbox=toolbox,
        prose="model",
        fuse_concepts=search.fuse_concepts,
    )


def screen(settings: Settings, session: ChatSession, lines: list[str]) -> str:
    out = StringIO()
    loop = ChatLoop(
        session,
        Console(file=out, width=240, color_system=None),
        search=chat_search(settings, DATASET).line,
    )
    loop.run(iter(lines))
    return out.getvalue()


def first_search(session: ChatSession, text: str) -> list[str]:
    events = list(session.send(text))
    assert isinstance(events[-1], FinalAnswer)
    finished = next(e for e in events if isinstance(e, ToolCallFinished))
    return finished.product_ids


def test_fake_chat_with_concepts_chosen_shows_the_line_and_a_dense_only_product(
    settings: Settings, toolbox: SearchToolbox
) -> None:
    write_search_choice(settings, fused_choice())
    session = open_chat(settings, toolbox)
    shown = screen(settings, session, ["/filters", "/quit"])
    line = fused_choice().line()
    assert line.startswith("search: keywords + concepts (chosen on samples dev, 63 queries")
    first_screen, after_filters = shown.split("filters: ", 1)
    assert line in first_screen and line in after_filters
    assert first_search(session, "earphones")[0] == "h1"  # no sample title says "earphones"


def test_fake_chat_without_a_choice_searches_keywords_and_says_so(
    settings: Settings, toolbox: SearchToolbox
) -> None:
    session = open_chat(settings, toolbox)
    shown = screen(settings, session, ["/filters", "/quit"])
    assert shown.count("search: keywords\n") == 2 and "concepts" not in shown
    assert "h1" not in first_search(session, "earphones")


def test_fake_chat_with_a_damaged_choice_searches_keywords(
    settings: Settings, toolbox: SearchToolbox
) -> None:
    write_search_choice(settings, fused_choice())
    search_choice_path(settings, DATASET).write_text('{"search": "keywords+concepts"', "utf-8")
    assert chat_search(settings, DATASET).warning
    session = open_chat(settings, toolbox)
    assert "search: keywords\n" in screen(settings, session, ["/quit"])
    assert "h1" not in first_search(session, "earphones")
