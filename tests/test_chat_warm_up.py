"""The chat's warm-up: what a first turn would open is opened while the shopper types.

Why: on Chorus the first turn's ``graph_ms`` was about 7 s more than a later turn's, spent
opening Chroma and loading the sentence model while the shopper waited. These tests count
opens (``SearchToolbox.opens``, ``ConceptIndex.opens``, the loaded sentence models) rather
than time, so they hold on a loaded machine. The indexes are real (tantivy and an embedded
Chroma under a temporary home); the model is a fake query writer.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import Field

from agent.conversation.session import ChatSession
from agent.conversation.writer import writer_messages
from agent.protocol.tool_schemas import tool_schemas
from agent.protocol.writer_prompts import EXPAND_SYSTEM_PROMPT
from tests.test_conversation_fake_llm import DATASET, FakeModel, catalog, turn, writer
from tools.search import embeddings
from tools.search.backend import ProductIndex
from tools.search.chroma_build_state import lock_path
from tools.search.chroma_concepts import ConceptIndex
from tools.search.tantivy_backend import TantivyIndex
from tools.search_tools import READY, WARM_UP_TEXT, SearchToolbox
from tools.settings.config import Settings


class RecordingModel(FakeModel):
    """The fake query writer, also recording each call's options (``max_tokens``, tools)."""

    options: list[dict[str, Any]] = Field(default_factory=list)

    def _generate(self, messages: list[BaseMessage], *args: Any, **kw: Any) -> ChatResult:
        self.options.append(kw)
        return super()._generate(messages, *args, **kw)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    """A home with the lexical index of the fake catalog built (the concept index is not)."""
    settings = Settings(home=tmp_path / "home")
    TantivyIndex(settings.tantivy_dir(DATASET), create=True, dataset=DATASET).index(catalog())
    return settings


def build_concepts(settings: Settings) -> None:
    ConceptIndex.from_settings(settings, DATASET).index(catalog())


@pytest.fixture()
def fresh_sentence_models(monkeypatch: pytest.MonkeyPatch) -> dict[Any, Any]:
    """No sentence model loaded yet in this process, as when a chat starts; the one loaded
    is dropped afterwards (the process's own models come back)."""
    models: dict[Any, Any] = {}
    monkeypatch.setattr(embeddings, "_models", models)
    return models


def chat(settings: Settings, model: FakeModel | None = None) -> tuple[ChatSession, SearchToolbox]:
    toolbox = SearchToolbox(settings, DATASET)
    session = ChatSession.open(
        settings, DATASET, model or FakeModel(reply=writer()), toolbox=toolbox
    )
    return session, toolbox


def opened(toolbox: SearchToolbox) -> tuple[Counter[str], int, list[Any]]:
    """Everything that counts as opening: the toolbox's indexes, the concept collection and
    the sentence models loaded (by identity, so a reload would show)."""
    concepts = toolbox.__dict__.get("concepts")
    collections = concepts.opens if isinstance(concepts, ConceptIndex) else 0
    return Counter(toolbox.opens), collections, list(embeddings._models.values())


def test_fake_after_warm_up_the_first_turn_opens_nothing(
    settings: Settings, fresh_sentence_models: dict[Any, Any]
) -> None:
    build_concepts(settings)
    fresh_sentence_models.clear()  # the build loaded it: a chat starts without
    session, toolbox = chat(settings)
    session.warm_up().join()
    assert session.warmed == {"lexical": READY, "concepts": READY, "hints": READY}
    assert toolbox.opens == {"lexical": 1, "concepts": 1}
    assert toolbox.concepts.opens == 1 and len(fresh_sentence_models) == 1
    before = opened(toolbox)
    answer, _ = turn(session, "a wireless mouse please")
    assert answer.products
    after = opened(toolbox)
    assert after[:2] == before[:2]
    assert [id(m) for m in after[2]] == [id(m) for m in before[2]]


def test_fake_warm_up_sends_the_first_turns_writer_prompt_capped_at_one_token(
    settings: Settings,
) -> None:
    model = RecordingModel(reply=writer())
    session, _ = chat(settings, model)
    session.warm_up().join()
    warm_prompt, again = model.prompts  # twice: the server keeps a repeated head computed
    assert warm_prompt == again == writer_messages(session.deps, WARM_UP_TEXT)
    assert [m.type for m in warm_prompt] == ["system", "human", "ai", "human"]
    assert warm_prompt[0].content == EXPAND_SYSTEM_PROMPT
    assert model.options[0]["max_tokens"] == 1
    assert [t["function"]["name"] for t in model.options[0]["tools"]] == ["search_products"]
    turn(session, "a wireless mouse please")
    first_turn = model.prompts[2]
    assert [m.type for m in first_turn] == [m.type for m in warm_prompt]
    assert model.options[2]["max_tokens"] == session.deps.limits.call_max_tokens


def test_fake_warm_up_with_model_prose_sends_the_conversation_prompt_with_every_tool(
    settings: Settings,
) -> None:
    model = RecordingModel(reply=writer())
    toolbox = SearchToolbox(settings, DATASET)
    session = ChatSession.open(settings, DATASET, model, toolbox=toolbox, prose="model")
    session.warm_up().join()
    warm_prompt, again = model.prompts
    assert warm_prompt == again
    assert [m.type for m in warm_prompt] == ["system", "human"]
    assert warm_prompt[-1].content == WARM_UP_TEXT
    assert model.options[0]["max_tokens"] == 1
    assert {t["function"]["name"] for t in model.options[0]["tools"]} == {
        t["function"]["name"] for t in tool_schemas()
    }


def test_fake_warm_up_with_a_missing_concept_index_still_lets_the_first_turn_run(
    settings: Settings,
) -> None:
    """The concept index cannot open during the warm-up; nothing of that failed open is kept,
    so a turn after the index appears opens it and uses it."""
    session, toolbox = chat(settings)
    session.warm_up().join()
    assert session.warmed["lexical"] == READY and session.warmed["hints"] == READY
    assert session.warmed["concepts"].startswith("skipped: no concept index")
    answer, _ = turn(session, "a wireless mouse please")
    assert answer.products and all("mouse" in p.title.lower() for p in answer.products)
    assert toolbox.concepts.opens == 0
    build_concepts(settings)
    turn(session, "bluetooth headphones")
    assert toolbox.concepts.opens == 1


@pytest.fixture()
def building(settings: Settings) -> Iterator[None]:
    """A concept build running (its lock held, as a detached builder holds it)."""
    path = lock_path(settings.index_dir(DATASET))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(fd)


@pytest.mark.usefixtures("building")
def test_fake_warm_up_skips_a_concept_index_still_building_and_the_first_turn_runs(
    settings: Settings,
) -> None:
    model = RecordingModel(reply=writer())
    session, _ = chat(settings, model)
    session.warm_up().join()
    assert session.warmed["concepts"] == "skipped: concept index still building (starting)"
    assert session.warmed["hints"] == READY  # feedback words, as the turn will show
    answer, _ = turn(session, "a wireless mouse please")
    assert answer.products
    assert "Candidate words: " in str(model.prompts[-1][-1].content)


class SlowLexical:
    """``open_lexical`` that takes a while, counting its calls: two threads asking at once
    both arrive while the first open is still under way."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, settings: Settings, dataset: str) -> ProductIndex:
        self.calls += 1
        time.sleep(0.2)
        return TantivyIndex(settings.tantivy_dir(dataset), dataset=dataset)


def test_fake_a_turn_sent_during_warm_up_shares_what_the_warm_up_opens(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = SlowLexical()
    monkeypatch.setattr("tools.search_tools.open_lexical", slow)
    session, toolbox = chat(settings)
    warming = session.warm_up()
    answer, _ = turn(session, "a wireless mouse please")  # the shopper typed fast
    warming.join()
    assert answer.products
    assert slow.calls == 1 and toolbox.opens["lexical"] == 1


def test_an_index_opens_once_when_threads_ask_for_it_at_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = SlowLexical()
    monkeypatch.setattr("tools.search_tools.open_lexical", slow)
    toolbox = SearchToolbox(settings, DATASET)
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(toolbox.lexical)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert slow.calls == 1 and toolbox.opens["lexical"] == 1
    assert len({id(index) for index in seen}) == 1


def test_the_concept_collection_opens_once_when_threads_read_at_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_concepts(settings)
    from tools.search import chroma_concepts

    connects: list[Path] = []
    real = chroma_concepts.persistent_client

    def slow_client(path: Path) -> Any:
        connects.append(path)
        time.sleep(0.2)
        return real(path)

    monkeypatch.setattr(chroma_concepts, "persistent_client", slow_client)
    index = ConceptIndex.from_settings(settings, DATASET)
    counts: list[int] = []
    threads = [threading.Thread(target=lambda: counts.append(index.count())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counts == [len(catalog())] * 4
    assert len(connects) == 1 and index.opens == 1


def test_a_search_side_already_warm_is_not_searched_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chat warms the toolbox while the model server starts and again in the session's
    warm-up; the second call finds every part ready and searches nothing."""
    build_concepts(settings)
    _, toolbox = chat(settings)
    first = toolbox.warm()
    assert first == {"lexical": READY, "concepts": READY, "hints": READY}

    def searched(*_: object, **__: object) -> None:
        raise AssertionError("a warm toolbox searched again")

    monkeypatch.setattr(toolbox, "run", searched)
    monkeypatch.setattr(toolbox, "expand_hints", searched)
    assert toolbox.warm() == first
