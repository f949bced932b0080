"""Golden chats: scripted conversations through the real graph, compared word for word.

Why: the conversation core is reorganised from time to time (nodes split into modules, the
state typed, the search reached through one service). Such a change must not change what the
shopper sees or what the trajectory log records. These tests run fixed conversations with
fake models over a real tantivy index and compare every turn with a JSON file written from the
code as it was: the events streamed (searches and their arguments, products shown, streamed
prose, the final answer), the prompts the model read, and the episode record as logged (minus
clock readings). Any changed product, word, call or reward fails the test.

To regenerate after a change that is *meant* to change behaviour:
``SHOPAGENT_WRITE_GOLDEN=1 pytest tests/test_chat_golden_fake_llm.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from agent.conversation.session import ChatSession
from agent.conversation.state import (
    ChatEvent,
    FinalAnswer,
    Notice,
    ProductsShown,
    TextChunk,
    ToolCallFinished,
    ToolCallStarted,
)
from agent.trajectory.log import TrajectoryLog, default_log_path
from tools.catalog.product import Product
from tools.search.request import SearchFilters
from tools.search.results import SearchResults, ranked
from tools.search.tantivy_backend import TantivyIndex
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden"
DATASET = "shop"
#: Keys whose values are clock readings or random ids: never compared.
VOLATILE = frozenset(
    {
        "latency",
        "started_at",
        "finished_at",
        "record_id",
        "model_ms",
        "tool_ms",
        "took_ms",
        "at",
    }
)


def item(pid: str, title: str, brand: str, price: str, **attributes: Any) -> Product:
    return Product(
        id=pid,
        title=title,
        brand=brand,
        price=Decimal(price),
        description=str(attributes.pop("description", "")),
        category_path=tuple(attributes.pop("category_path", ())),
        attributes=attributes,
    )


def catalog() -> list[Product]:
    return [
        item("mo1", "Logitech M185 wireless mouse", "Logitech", "14.99", connectivity="Wireless"),
        item("mo2", "Logitech M330 Silent wireless mouse", "Logitech", "29.99", connectivity="RF"),
        item("mo3", "Logitech MX Master 3 wireless mouse", "Logitech", "99.00", bluetooth=True),
        item("mo4", "Razer Basilisk wireless gaming mouse", "Razer", "59.99", dpi=16000.0),
        item("mo5", "HP X200 wireless mouse", "HP", "9.95", connectivity="Wireless"),
        item("mo6", "HP 150 wired mouse", "HP", "7.50", connectivity="Wired"),
        item("mo7", "Razer DeathAdder wired gaming mouse", "Razer", "39.99", dpi=20000.0),
        item("kb1", "Logitech K120 keyboard", "Logitech", "12.99", layout="US"),
        item("kb2", "Razer BlackWidow mechanical keyboard", "Razer", "129.00", layout="US"),
        item(
            "hp1",
            "Sony WH-CH520 bluetooth headphones",
            "Sony",
            "49.99",
            bluetooth=True,
            category_path=("Audio", "Headphones"),
            description="On-ear wireless headphones with 50 hours of battery.",
        ),
        item("hp2", "JBL Tune 510BT bluetooth headphones", "JBL", "39.95", bluetooth=True),
        item("hp3", "Sennheiser HD 206 wired headphones", "Sennheiser", "29.00"),
        item("hp4", "Sony WH-1000XM5 bluetooth headphones", "Sony", "349.00", bluetooth=True),
        item("lp1", "Lenovo IdeaPad 3 laptop 15 inch", "Lenovo", "549.00", ram="8GB"),
        item("lp2", "HP 250 G9 laptop", "HP", "699.00", ram="16GB"),
        item("lp3", "Dell XPS 13 laptop", "Dell", "1299.00", ram="16GB"),
        item("mn1", "Dell S2721D 27 inch monitor", "Dell", "229.00", size="27 inch"),
        item("mn2", "LG 24MP400 24 inch monitor", "LG", "129.00", size="24 inch"),
        item("cm1", "Canon EOS 2000D camera", "Canon", "479.00", megapixels=24.0),
        item("cm2", "Kodak Pixpro compact camera", "Kodak", "89.99", megapixels=16.0),
    ]


# -- fakes -----------------------------------------------------------------------------------


class FakeModel(BaseChatModel):
    """A fake chat model: ``reply`` maps each prompt to an answer; every prompt is recorded."""

    reply: Callable[[list[BaseMessage]], AIMessage]
    prompts: list[list[BaseMessage]] = Field(default_factory=list)
    model_name: str = "fake-golden"

    @property
    def _llm_type(self) -> str:
        return "fake-golden"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        return self.bind(tools=list(tools), **kwargs)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        self.prompts.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.reply(list(messages)))])


class FakeConcepts:
    """A concept index that knows what a few words mean (the real one embeds them)."""

    MEANS: ClassVar[dict[str, set[str]]] = {"photography": {"camera"}, "music": {"headphones"}}

    def __init__(self, products: Sequence[Product]) -> None:
        self.products = {p.id: p for p in products}

    def search_concepts(
        self, concepts: Sequence[str], filters: SearchFilters | None = None, size: int = 10
    ) -> SearchResults:
        words = {w for c in concepts for w in re.findall(r"\w+", c.lower())}
        words |= {m for w in words for m in self.MEANS.get(w, set())}
        scored = [
            (p, float(len(words & set(re.findall(r"\w+", p.title.lower())))))
            for p in self.products.values()
            if filters is None or filters.matches(p)
        ]
        hits = sorted((pair for pair in scored if pair[1]), key=lambda pair: (-pair[1], pair[0].id))
        return SearchResults(hits=ranked(hits[:size]), backend="concepts")

    def get(self, product_id: str) -> Product | None:
        return self.products.get(product_id)


def expand_writer(messages: list[BaseMessage]) -> AIMessage:
    """The composed-mode writer: copies the request and adds the first candidate word."""
    user = str([m for m in messages if isinstance(m, HumanMessage)][-1].content).split("\n")
    arguments: dict[str, Any] = {"query": user[0]}
    if len(user) > 1 and user[1].startswith("Candidate words: "):
        words = [w for w in user[1].removeprefix("Candidate words: ").split(", ") if w]
        if words and words[0] != "(none)":
            arguments["add_terms"] = [words[0]]
    if "laptop" in user[0]:  # a wrong filter, as SmolLM2 writes them: the state wins
        arguments["min_price"] = 800
    return AIMessage(
        content="", tool_calls=[{"name": "search_products", "args": arguments, "id": "w"}]
    )


def scripted(replies: list[AIMessage | Exception]) -> Callable[[list[BaseMessage]], AIMessage]:
    queue: Iterator[AIMessage | Exception] = iter(replies)

    def reply(_: list[BaseMessage]) -> AIMessage:
        nxt = next(queue)
        if isinstance(nxt, Exception):
            raise nxt
        return nxt

    return reply


def native(**arguments: Any) -> AIMessage:
    return AIMessage(
        content="", tool_calls=[{"name": "search_products", "args": arguments, "id": "n"}]
    )


# -- what a turn looks like, as compared -----------------------------------------------------


def scrub(value: Any) -> Any:
    """JSON-shaped ``value`` without clock readings and random ids."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def event_view(event: ChatEvent) -> dict[str, Any]:
    if isinstance(event, ToolCallStarted):
        return {"started": event.name, "arguments": event.arguments}
    if isinstance(event, ToolCallFinished):
        return {
            "finished": event.name,
            "ok": event.ok,
            "ids": event.product_ids,
            "error": event.error,
            "fallback": event.fallback,
        }
    if isinstance(event, ProductsShown):
        return {"shown": [p.id for p in event.products]}
    if isinstance(event, TextChunk):
        return {"chunk": event.text}
    if isinstance(event, Notice):
        return {"notice": event.text}
    assert isinstance(event, FinalAnswer)
    return {"final": scrub(asdict(event))}


def prompt_view(prompt: list[BaseMessage]) -> list[dict[str, Any]]:
    return [
        {"type": m.type, "content": m.content, "tool_calls": getattr(m, "tool_calls", None) or []}
        for m in prompt
    ]


class Recorder:
    """Runs turns and keeps what each one showed, streamed, prompted and logged."""

    def __init__(self, settings: Settings, session: ChatSession, model: FakeModel) -> None:
        self.settings = settings
        self.session = session
        self.model = model
        self.turns: list[dict[str, Any]] = []

    def send(self, text: str, **options: Any) -> FinalAnswer:
        prompts_before = len(self.model.prompts)
        log_before = len(self._log())
        events = list(self.session.send(text, **options))
        answer = events[-1]
        assert isinstance(answer, FinalAnswer)
        self.turns.append(
            {
                "user": text,
                "shown": [p.id for p in answer.products],
                "reply": answer.text,
                "events": [event_view(e) for e in events],
                "prompts": [prompt_view(p) for p in self.model.prompts[prompts_before:]],
                "logged": [scrub(r) for r in self._log()[log_before:]],
                "filters": self.session.filters().to_dict(),
            }
        )
        return answer

    def feedback(self, kind: str, position: int) -> None:
        log_before = len(self._log())
        result = getattr(self.session, kind)(position)
        self.turns.append(
            {
                "user": f"/{kind} {position}",
                "feedback": scrub(asdict(result)),
                "logged": [scrub(r) for r in self._log()[log_before:]],
            }
        )

    def _log(self) -> list[dict[str, Any]]:
        return list(TrajectoryLog(default_log_path(self.settings.home)).read().records)

    def history(self) -> list[dict[str, Any]]:
        """What ``/history`` shows, field by field."""
        return [
            {
                "turn": t.turn,
                "user_text": t.user_text,
                "answer": t.answer,
                "products": [asdict(p) for p in t.products],
                "episode_id": t.episode_id,
                "stop_reason": t.stop_reason,
            }
            for t in self.session.history()
        ]


def assert_golden(name: str, observed: dict[str, Any]) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(observed, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    if os.environ.get("SHOPAGENT_WRITE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    observed = json.loads(text)
    for i, (want, got) in enumerate(zip(expected["turns"], observed["turns"], strict=False)):
        assert got == want, f"turn {i + 1} ({want['user']!r}) differs from {path.name}"
    assert observed == expected


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture()
def toolbox(settings: Settings) -> SearchToolbox:
    index = TantivyIndex(None, create=True)
    index.index(catalog())
    box = SearchToolbox(settings, DATASET)
    box.__dict__["lexical"] = index
    box.__dict__["concepts"] = FakeConcepts(catalog())
    return box


def open_recorder(
    settings: Settings,
    toolbox: SearchToolbox,
    reply: Callable[[list[BaseMessage]], AIMessage],
    conversation_id: str,
    **options: Any,
) -> Recorder:
    model = FakeModel(reply=reply)
    session = ChatSession.open(
        settings, DATASET, model, toolbox=toolbox, conversation_id=None, **options
    )
    session.conversation_id = conversation_id
    return Recorder(settings, session, model)


# -- the chats -------------------------------------------------------------------------------


def test_golden_composed_chat(settings: Settings, toolbox: SearchToolbox) -> None:
    """The embedded model's mode: the model writes the search, the graph writes the reply."""
    chat = open_recorder(settings, toolbox, expand_writer, "golden-composed", prose="composed")
    chat.send("I'm looking for a wireless mouse under 60 dollars")  # search + price limit
    chat.send("only Logitech")  # refinement: a brand
    chat.send("tell me about the second one")  # reference
    chat.send("compare 1 and 2")  # comparison table
    chat.feedback("like", 1)
    chat.send("cheaper")  # refinement: below the median shown
    chat.send("bluetooth headphones")  # a new product type: the price limit goes
    chat.send("is the first one bluetooth?")  # a question about the list
    chat.feedback("buy", 1)
    chat.send("more like 1")  # similar products
    chat.send("a laptop", judged={"lp1": 2, "lp2": 1, "lp3": 0})  # the model's wrong filter
    chat.send("start over")  # nothing to search: a question back
    chat.send("a gift for my dad who likes photography")  # words, then concepts
    chat.send("a Razer keyboard under 20")  # nothing: relax one constraint at a time
    chat.send("#9")  # a position that was never shown
    chat.session.close()
    # resumed from the checkpoint: the constraints and the list on screen carry over
    resumed = ChatSession.open(
        settings,
        DATASET,
        chat.model,
        toolbox=toolbox,
        conversation_id="golden-composed",
        prose="composed",
    )
    chat.session = resumed
    chat.send("cheaper")
    chat.send("the first one")
    observed = {"turns": chat.turns, "history": chat.history()}
    resumed.close()
    assert len(observed["turns"]) >= 8
    assert_golden("chat_composed", observed)


def test_golden_model_prose_chat(settings: Settings, toolbox: SearchToolbox) -> None:
    """A capable model's mode: it searches with all tools and writes prose, which is checked."""
    replies: list[AIMessage | Exception] = [
        # turn 1: a native call, then prose citing a result (streamed, shown)
        native(query="bluetooth headphones", max_price=100),
        AIMessage(content="The [hp2] is the cheapest at $39.95. The [hp1] lasts 50 hours."),
        # turn 2: a call written as text, then prose with a wrong price (composed instead)
        AIMessage(
            content='<tool_call>{"name": "search_products", "arguments": '
            '{"query": "sony headphones", "brand": "Sony"}}</tool_call>'
        ),
        AIMessage(content="The [hp1] costs $19.99, a bargain. Also see [zz9]."),
        # turn 3: the model server fails: the graph searches the words itself
        RuntimeError("connection refused"),
        # turn 4: the model chats instead of searching, then answers with markup
        AIMessage(content="Sure! I love keyboards."),
        AIMessage(content='Try [kb1]. {"id": "kb7", "title": "fake"}'),
        # turn 5: get_product for a result, then an answer
        native(query="monitor"),
        AIMessage(
            content="",
            tool_calls=[{"name": "get_product", "args": {"product_id": "mn1"}, "id": "g"}],
        ),
        AIMessage(content="The [mn1] is 27 inch, for $229.00."),
    ]
    chat = open_recorder(settings, toolbox, scripted(replies), "golden-model", prose="model")
    chat.send("bluetooth headphones under 100")
    chat.send("only Sony")
    chat.send("a wired mouse")
    chat.send("a keyboard")
    chat.send("a 27 inch monitor")
    chat.feedback("like", 1)
    observed = {"turns": chat.turns, "history": chat.history()}
    chat.session.close()
    assert_golden("chat_model_prose", observed)
