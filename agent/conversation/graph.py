"""The shopping agent as a LangGraph ``StateGraph``: its nodes, its edges and its routers.

The graph owns the conversation; the model owns the query. One shopper message runs::

    start ─┬─> plan ─┬─> tools ─> observe ─┬─> plan (a recovery search, or the model reads)
           │         │                     └─> respond
           │         └─> respond
           ├─> refer ─> respond
           └─> respond (a clarifying question)

- ``start`` (``nodes.start``) folds the message into the constraints or resolves a reference;
- ``plan`` (``nodes.plan``) gets the next search from the model, or makes it itself;
- ``tools`` is a ``ToolNode`` over ``tool_node.AgentTools``: every search goes through
  ``agent.protocol.tool_search``, the path evals and RL take too;
- ``observe`` (``nodes.observe``) keeps what respects the constraints;
- ``refer`` (``nodes.refer``) answers "the second one" / "compare 1 and 3" from the catalog;
- ``respond`` (``nodes.respond``) writes the reply, shows the products and logs the episode.

Every decision about where a turn goes next is made here, by the routers, from the state.
A turn never exceeds ``max_tool_calls`` model tool calls or ``turn_timeout_s`` of wall time.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.conversation.deps import AgentContext, AgentDeps, FacetCache
from agent.conversation.events import EpisodeRecorded
from agent.conversation.model_io import model_id_of
from agent.conversation.nodes.observe import observe
from agent.conversation.nodes.plan import plan
from agent.conversation.nodes.refer import refer
from agent.conversation.nodes.respond import respond
from agent.conversation.nodes.start import start
from agent.conversation.recovery import next_recovery
from agent.conversation.references import ANSWERED_FROM_THE_LIST
from agent.conversation.state import AgentState
from agent.conversation.tool_node import AgentTools, build_tool_node
from tools.errors import BadInput

#: Importers of the graph's entry points find them here (``evals.strategies``, the session).
__all__ = [
    "AgentDeps",
    "EpisodeRecorded",
    "FacetCache",
    "build_graph",
    "model_id_of",
    "turn_input",
]


def build_graph(
    llm: BaseChatModel, deps: AgentDeps, checkpointer: BaseCheckpointSaver | None = None
) -> CompiledStateGraph:
    """Compile the agent; with a checkpointer, conversations persist by ``thread_id``."""
    ctx = AgentContext.build(llm, deps)
    graph = StateGraph(AgentState)
    graph.add_node("start", partial(start, ctx=ctx))
    graph.add_node("plan", partial(plan, ctx=ctx))
    tools = AgentTools(deps.toolbox, deps.limits, fuse_concepts=deps.fuse_concepts)
    graph.add_node("tools", build_tool_node(tools))
    graph.add_node("observe", partial(observe, ctx=ctx))
    graph.add_node("refer", partial(refer, ctx=ctx))
    graph.add_node("respond", partial(respond, ctx=ctx))
    graph.add_edge(START, "start")
    graph.add_conditional_edges(
        "start", after_start, {"plan": "plan", "refer": "refer", "respond": "respond"}
    )
    graph.add_conditional_edges("plan", after_plan, {"tools": "tools", "respond": "respond"})
    graph.add_edge("tools", "observe")
    graph.add_conditional_edges(
        "observe", partial(after_observe, ctx=ctx), {"plan": "plan", "respond": "respond"}
    )
    graph.add_edge("refer", "respond")
    graph.add_edge("respond", END)
    return graph.compile(checkpointer=checkpointer)


def turn_input(
    user_text: str,
    *,
    conversation_id: str,
    judged: Mapping[str, int] | None = None,
    query_id: str | None = None,
) -> dict[str, Any]:
    """The graph input for one shopper message (every caller must pass judged/query_id)."""
    text = " ".join(str(user_text).split())
    if not text:
        raise BadInput("the message is empty")
    return {
        "messages": [HumanMessage(text)],
        "conversation_id": conversation_id,
        "judged": {str(k): int(v) for k, v in (judged or {}).items()},
        "query_id": query_id,
    }


# -- routers ---------------------------------------------------------------------------------


def after_start(state: AgentState) -> Literal["plan", "refer", "respond"]:
    """A clarifying question is answered at once; a reference goes to the catalog."""
    if state.composed_text is not None:
        return "respond"
    if state.reference is not None and state.reference.kind in ANSWERED_FROM_THE_LIST:
        return "refer"
    return "plan"


def after_plan(state: AgentState) -> Literal["tools", "respond"]:
    """Calls to run go to the tools; a stop (answer, timeout, budget) to the reply."""
    last = state.messages[-1]
    if isinstance(last, AIMessage) and last.tool_calls and state.stop_reason is None:
        return "tools"
    return "respond"


def after_observe(state: AgentState, ctx: AgentContext) -> Literal["plan", "respond"]:
    """Back to ``plan`` for a recovery search (nothing kept yet) or, with model prose, for
    the model to read the results; otherwise the turn is answered. With composed prose, or a
    model that failed this turn, the model has nothing to add once products are found."""
    if state.stop_reason is not None:
        return "respond"
    if next_recovery(state, ctx.limits, ctx.deps.toolbox.respell) is not None:
        return "plan"
    if ctx.prose == "composed" or state.model_problem:
        return "respond"
    return "plan"
