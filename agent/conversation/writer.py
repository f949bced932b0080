"""The prompt the query writer reads in composed mode: the one the RL loop trains.

Why its own module: the chat must show the shipped policy exactly the prompt it was trained
on (``agent.protocol.writer_prompts``), with the same hints, or the policy's gains do not
carry over; ``tests/test_expand_action.py`` pins the two to be equal.

The ``conversation`` style reads the conversation itself (``conversation_view``): the
shopper's recent messages, the last search and the constraints, so a chatty first message, a
product named one message before its details, or a restart reach the model as the shopper
wrote them, not as the graph's merged words.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage

from agent.conversation.deps import AgentDeps
from agent.conversation.state import AgentState
from agent.protocol.tool_schemas import SEARCH_PRODUCTS
from agent.protocol.writer_prompts import (
    CONVERSATION_MESSAGES,
    ConversationView,
    Prompt,
    build_conversation_prompt,
    styled_prompt,
)


def conversation_view(state: AgentState) -> ConversationView:
    """The writer's view of a conversation at the current turn: the last shopper messages,
    the query of the last search before this message, and the active constraints.

    The messages are as the shopper wrote them, not respelled: respelling corrects every word
    no product holds, and a chat message's own words are mostly such words ("possible.
    thanks" became "postabl. tank" on Chorus). The graph's own searches respell its content
    words (``search_calls.graph_call``)."""
    shopper = [str(m.content) for m in state.messages if isinstance(m, HumanMessage)]
    current = max(
        (i for i, m in enumerate(state.messages) if isinstance(m, HumanMessage)), default=0
    )
    last_search = ""
    for message in reversed(state.messages[:current]):
        if not isinstance(message, AIMessage):
            continue
        queries = [
            c["args"].get("query") for c in message.tool_calls if c["name"] == SEARCH_PRODUCTS
        ]
        if queries and queries[0]:
            last_search = str(queries[0])
            break
    return ConversationView(
        messages=tuple(shopper[-CONVERSATION_MESSAGES:]),
        last_search=last_search,
        constraints=state.active.describe(),
    )


def writer_request(
    deps: AgentDeps, query_text: str, view: ConversationView | None = None
) -> Prompt:
    """The writer prompt the query model sees in composed mode: the one the policy was trained
    on (``deps.writer_style``). ``conversation`` reads ``view`` (the request alone without
    one). The expand prompt needs the embedded index's term statistics; on a lexical backend
    without them (Elasticsearch) the rewrite prompt is used. Its candidate words come from the
    concept index, or from RM3 feedback while that index is building."""
    if deps.writer_style == "conversation":
        return build_conversation_prompt(view or ConversationView((query_text,)))
    if deps.writer_style != "expand" or not deps.toolbox.has_term_statistics():
        return styled_prompt(SEARCH_PRODUCTS, "rewrite", query_text)
    return styled_prompt(SEARCH_PRODUCTS, "expand", query_text, deps.toolbox, fallback=True)


def writer_messages(
    deps: AgentDeps, query_text: str, view: ConversationView | None = None
) -> list[AnyMessage]:
    """``writer_request`` as chat messages (the worked example's call as an assistant turn)."""
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [
        kinds[m["role"]](content=str(m["content"]))
        for m in writer_request(deps, query_text, view).messages
    ]
