"""The agent's typed state: what a checkpoint keeps, what a turn resets, what old checkpoints hold.

Why: the state is a dataclass of real types (``Constraints``, ``ShownProduct``, ``Product``,
``Step``...) that LangGraph serializes into the conversation store. A type must come back
equal (a tuple must not come back a list that no longer compares equal), a checkpoint written
before the state was typed (dicts) must still resume, and every per-turn field must be reset
by ``start`` from its default.
"""

from __future__ import annotations

import logging
from dataclasses import fields, replace
from decimal import Decimal
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from agent.conversation.constraints import Constraints
from agent.conversation.products import ShownProduct
from agent.conversation.references import Reference
from agent.conversation.search_calls import Decision
from agent.conversation.state import (
    PER_TURN,
    AgentState,
    SearchRound,
    TurnSummary,
    checkpoint_serde,
    read_state,
    turn_defaults,
)
from agent.conversation.steps import graph_step
from agent.protocol.tool_calls import ParsedToolCall
from agent.trajectory.log import HitRecord, ToolAttempt, ToolCallRecord
from tests.test_chat_golden_fake_llm import (
    DATASET,
    FakeConcepts,
    FakeModel,
    catalog,
    expand_writer,
)
from tools.search.tantivy_backend import TantivyIndex
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings

MOUSE = Constraints(
    terms=("wireless", "mouse"),
    product="mouse",
    max_price=Decimal("59.99"),
    brands=("Logitech",),
    attributes=("bluetooth",),
)
SHOWN = ShownProduct(1, "mo1", "Logitech M185 wireless mouse", "Logitech", "14.99", "Mice")


def a_full_state() -> AgentState:
    """A state with every typed field holding a value."""
    step = graph_step(
        1, Decision("relax", [ParsedToolCall("search_products", {"query": "mouse"}, "c1")], [])
    )
    attempt = ToolAttempt("search_products", {"query": "mouse"}, True, [HitRecord("mo1", 1, 2.5)])
    record = ToolCallRecord("c1", "search_products", {"query": "mouse"}, [attempt], 0.5)
    product = catalog()[0]
    return AgentState(
        messages=[HumanMessage("a wireless mouse", id="h1")],
        conversation_id="c",
        turn=2,
        retrieved={product.id: product},
        turns=[TurnSummary(1, "mouse", "Found 1", [SHOWN], "c:1", "answered", "mouse")],
        constraints=MOUSE,
        written_queries={"wireless mouse": "wireless mouse"},
        last_shown=[SHOWN],
        judged={"mo1": 2},
        query_id="q1",
        user_text="a wireless mouse",
        steps=[replace(step, tool_calls=[record])],
        turn_product_ids=["mo1"],
        reference=Reference("compare", (1, 2)),
        active=MOUSE,
        rounds=[SearchRound(3, 1, ("mo1", "mo2"), ("mouse",))],
    )


def test_every_field_comes_back_from_a_checkpoint_equal() -> None:
    serde = checkpoint_serde()
    state = a_full_state()
    values = {
        spec.name: serde.loads_typed(serde.dumps_typed(getattr(state, spec.name)))
        for spec in fields(AgentState)
    }
    rebuilt = read_state(values)  # what LangGraph hands the next node
    for spec in fields(AgentState):
        assert getattr(rebuilt, spec.name) == getattr(state, spec.name), spec.name
    assert rebuilt == state


def test_a_checkpoint_from_before_the_typed_state_is_read_as_types() -> None:
    shown = SHOWN.as_record()
    old = {
        "constraints": MOUSE.to_dict(),
        "active": MOUSE.to_dict(),
        "last_shown": [shown],
        "retrieved": {"mo1": catalog()[0].to_dict()},
        "turns": [
            {
                "turn": 1,
                "user_text": "mouse",
                "answer": "Found 1",
                "products": [shown],
                "episode_id": "c:1",
                "stop_reason": "answered",
                "filters": "mouse",
            }
        ],
        "a channel no longer kept": 1,
    }
    state = read_state(old)
    assert state.constraints == MOUSE and state.active == MOUSE
    assert state.last_shown == [SHOWN]
    assert state.retrieved == {"mo1": catalog()[0]}
    assert state.turns == [TurnSummary(1, "mouse", "Found 1", [SHOWN], "c:1", "answered", "mouse")]


def test_start_resets_exactly_the_per_turn_fields_to_their_defaults() -> None:
    defaults = turn_defaults()
    per_turn = {spec.name for spec in fields(AgentState) if spec.metadata == PER_TURN}
    assert set(defaults) == per_turn
    fresh = AgentState()
    assert all(defaults[name] == getattr(fresh, name) for name in per_turn)
    # a new list each time: one turn's steps never leak into the next
    assert turn_defaults()["steps"] is not defaults["steps"]
    # what the conversation carries is never reset
    assert not {"messages", "constraints", "last_shown", "retrieved", "turns"} & per_turn


@pytest.fixture()
def toolbox(tmp_path: Path) -> SearchToolbox:
    index = TantivyIndex(None, create=True)
    index.index(catalog())
    box = SearchToolbox(Settings(home=tmp_path / "home"), DATASET)
    box.__dict__.update(lexical=index, concepts=FakeConcepts(catalog()))
    return box


def test_a_conversation_resumes_from_its_store_with_no_unregistered_types(
    toolbox: SearchToolbox, caplog: pytest.LogCaptureFixture
) -> None:
    from agent.conversation.session import ChatSession

    settings = toolbox.settings
    model = FakeModel(reply=expand_writer)
    with ChatSession.open(settings, DATASET, model, toolbox=toolbox, prose="composed") as chat:
        list(chat.send("wireless mouse under 60"))
        list(chat.send("only Logitech"))
        conversation = chat.conversation_id
    with (
        caplog.at_level(logging.WARNING, logger="langgraph"),
        ChatSession.open(
            settings,
            DATASET,
            model,
            toolbox=toolbox,
            prose="composed",
            conversation_id=conversation,
        ) as resumed,
    ):
        assert resumed.filters().describe() == "wireless mouse · Logitech · under $60"
        assert [p.id for p in resumed.history()[-1].products] == ["mo1", "mo2"]
        answer = list(resumed.send("compare 1 and 2"))[-1]
    assert answer.text.startswith("Comparing #1 and #2.")  # type: ignore[union-attr]
    assert not [r for r in caplog.records if "type" in r.getMessage()]
