"""One value from the model can neither end the chat nor lose the turn.

A fake model writes a tool call whose ``max_price`` is ``"1e999999999"`` (once an
``unexpected Overflow`` that ended the chat), and a reply holding a lone surrogate (once a turn
missing from ``/history`` and the log). Each turn must complete, be remembered and be logged.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage

from agent.trajectory.log import TrajectoryLog, default_log_path
from tests.test_conversation_fake_llm import (  # noqa: F401  (fixtures)
    call,
    open_chat,
    settings,
    toolbox,
    turn,
)
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings


def test_fake_an_absurd_price_argument_is_no_limit_not_a_crash(
    settings: Settings,  # noqa: F811
    toolbox: SearchToolbox,  # noqa: F811
) -> None:
    replies = iter([call(query="headphones", max_price="1e999999999")])
    session, _ = open_chat(settings, toolbox, lambda _: next(replies))
    answer, _ = turn(session, "headphones")
    assert answer.products  # searched, shown
    assert "1e999999999" not in answer.text
    session.close()


def test_fake_a_lone_surrogate_in_the_reply_keeps_the_turn(
    settings: Settings,  # noqa: F811
    toolbox: SearchToolbox,  # noqa: F811
) -> None:
    replies = iter(
        [call(query="headphones"), AIMessage(content="The [hp1] is a good pick \ud800 here.")]
    )
    session, _ = open_chat(settings, toolbox, lambda _: next(replies), prose="model")
    answer, _ = turn(session, "headphones")
    assert "\ud800" not in answer.text
    assert [summary.user_text for summary in session.history()] == ["headphones"]
    session.close()
    records = TrajectoryLog(default_log_path(settings.home)).read().records
    assert [record["user_text"] for record in records] == ["headphones"]
