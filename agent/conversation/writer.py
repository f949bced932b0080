"""The prompt the query writer reads in composed mode: the one the RL loop trains.

Why its own module: the chat must show the shipped policy exactly the prompt it was trained
on (``agent.protocol.writer_prompts``), with the same hints, or the policy's gains do not
carry over; ``tests/test_expand_action.py`` pins the two to be equal.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage

from agent.conversation.deps import AgentDeps
from agent.protocol.tool_schemas import SEARCH_PRODUCTS
from agent.protocol.writer_prompts import Prompt, styled_prompt


def writer_request(deps: AgentDeps, query_text: str) -> Prompt:
    """The writer prompt the query model sees in composed mode: the one the policy was trained
    on (``deps.writer_style``). The expand prompt needs the embedded index's term statistics;
    on a lexical backend without them (Elasticsearch) the rewrite prompt is used. Its candidate
    words come from the concept index, or from RM3 feedback while that index is building."""
    if deps.writer_style != "expand" or not deps.toolbox.has_term_statistics():
        return styled_prompt(SEARCH_PRODUCTS, "rewrite", query_text)
    return styled_prompt(SEARCH_PRODUCTS, "expand", query_text, deps.toolbox, fallback=True)


def writer_messages(deps: AgentDeps, query_text: str) -> list[AnyMessage]:
    """``writer_request`` as chat messages (the worked example's call as an assistant turn)."""
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [
        kinds[m["role"]](content=str(m["content"]))
        for m in writer_request(deps, query_text).messages
    ]
