"""The shopping agent as a LangGraph ``StateGraph``. The graph owns the conversation; the model
owns the query.

- ``start`` folds the shopper's message into the conversation's ``Constraints``
  (``agent.conversation.constraints``: product words, prices, brands, features, exclusions)
  and resolves references to the last list shown (``agent.conversation.references``).
  "the second one" and "compare 1 and 3" go to ``refer``; a message with nothing to search
  for gets a question back; everything else is a request, and every request searches.
- ``plan`` asks the model for the search. With composed prose (the embedded model) the model
  sees the writer prompt the RL loop trains (``agent.protocol.writer_prompts``: one system
  line, the request as words, one tool) and may spend ``call_max_tokens`` on it; with model
  prose it sees the conversation and all tools. A usable call runs with the state's filters
  (the state wins over the call: ``apply_to_call``); otherwise, or when the model fails, the
  graph searches the state's words itself. Words the model already wrote a query for in this
  conversation ("only Logitech" and "cheaper" change filters, not words) reuse that query,
  at no model time. When a search found nothing, ``plan`` searches the request's words, then
  the concept index (what the words mean: "photography" finds cameras), then drops one
  constraint at a time (``agent.conversation.relax``), up to ``max_relaxations``.
- ``tools`` is a ``ToolNode`` over the search tools (``agent.conversation.tool_node``): every
  search, the model's or the graph's, goes through ``agent.protocol.tool_search``.
- ``observe`` records each result (ids, ranks, NDCG@10 against the turn's judgments) and keeps
  the products that respect the constraints.
- ``refer`` answers a reference from the catalog: one product's details or a side-by-side table.
- ``respond`` writes the reply: the model's prose when configured and it passes the checks
  (grounded, no repeated sentence, not cut mid-sentence), else a reply composed from the
  results (``agent.conversation.compose``); then scores the episode and logs it.

A turn never exceeds ``max_tool_calls`` model tool calls or ``turn_timeout_s`` of wall time.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_chunk_to_message,
)
from langchain_core.runnables import Runnable
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.conversation.compose import (
    compose_clarify,
    compose_comparison,
    compose_details,
    compose_missing,
    compose_nothing,
    compose_results,
)
from agent.conversation.constraints import (
    Constraints,
    absorb_call,
    apply_to_call,
    shown_prices,
    update_constraints,
)
from agent.conversation.episode_reward import episode_reward, judged_ndcg
from agent.conversation.grounding import ground_answer, prose_end
from agent.conversation.prompts import BUDGET_NOTE, build_prompt, fallback_answer
from agent.conversation.prose_check import prose_passes
from agent.conversation.references import Reference, find_reference
from agent.conversation.relax import next_relaxation
from agent.conversation.search_calls import (
    Decision,
    ReplyParse,
    call_message,
    content_words,
    graph_call,
    overridden,
    shares_words,
    usable,
)
from agent.conversation.state import (
    AgentLimits,
    AgentState,
    FinalAnswer,
    ProductsShown,
    ProseMode,
    TextChunk,
    WriterStyle,
    shown_from_dict,
)
from agent.conversation.steps import (
    graph_step,
    model_step,
    to_openai,
    tool_record,
)
from agent.conversation.tool_node import (
    AgentToolbox,
    AgentTools,
    build_tool_node,
    call_with_timeout,
)
from agent.protocol.tool_calls import ParsedToolCall, parse_openai_message, parse_tool_calls
from agent.protocol.tool_schemas import (
    SEARCH_CONCEPTS,
    SEARCH_PRODUCTS,
    TOOL_SCHEMAS,
    schema_for,
    tool_schemas,
)
from agent.protocol.writer_prompts import Prompt, styled_prompt
from agent.trajectory.log import (
    EpisodeRecord,
    Latency,
    ModelStep,
    ToolCallRecord,
    TrajectoryLog,
    utc_now,
)
from tools.catalog.product import Product
from tools.errors import BadInput, one_line
from tools.search.facets import Facets
from tools.search.prf import FeedbackIndex

#: Seconds a catalog re-read may take at answer time before the tool's copy is used.
CATALOG_REREAD_TIMEOUT_S = 5.0
#: Seconds of the turn kept for the graph's own search when the model is slow.
SEARCH_RESERVE_S = 3.0
_SEARCHES = (SEARCH_PRODUCTS, SEARCH_CONCEPTS)
_WORDS = re.compile(r"[\w][\w'-]*")


@dataclass(slots=True)
class AgentDeps:
    """What the graph's nodes work with besides the model."""

    toolbox: AgentToolbox
    limits: AgentLimits = field(default_factory=AgentLimits)
    log: TrajectoryLog | None = None
    model_id: str = "unknown"
    model_checkpoint: str | None = None
    dataset: str = ""
    catalog_version: Callable[[], str | None] = lambda: None
    source: str = "chat"
    #: Who writes the reply (see ``ProseMode``); resolve ``[llm] prose`` before serving.
    prose: ProseMode = "composed"
    #: The catalog's brands and categories; by default read once from the lexical index.
    facets: Callable[[], Facets] | None = None
    #: The writer prompt of composed mode (``agent.protocol.writer_prompts``): ``expand``, the
    #: prompt the shipped policy is trained on, or ``rewrite`` (the model writes the query).
    writer_style: WriterStyle = "expand"


@dataclass(frozen=True, slots=True)
class EpisodeRecorded:
    """Streamed after ``FinalAnswer``: the full record (the session keeps it for feedback)."""

    record: EpisodeRecord
    log_error: str | None = None
    #: How this turn follows the previous one: "refinement" (same product, changed
    #: constraints), "reference" (pointed at the last list), "new" or None (first turn).
    follows: str | None = None


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


def parse_reply(message: AIMessage, *, id_prefix: str) -> ReplyParse:
    """Tool calls from a reply: the server's ``tool_calls`` if any, else parsed from the text.

    Native calls go through ``parse_openai_message`` (written back into the taught
    ``<tool_call>`` form and parsed with the prose), so a reply gets the same class whether the
    server or this node parsed it. Call ids are made unique per turn and step.
    """
    raw_native = [*message.tool_calls, *message.invalid_tool_calls]
    raw = [_openai_call(call) for call in raw_native]
    if raw:
        parsed = parse_openai_message(message.text, raw, TOOL_SCHEMAS)
        source: Literal["native", "text", "none"] = "native"
    else:
        parsed = parse_tool_calls(message.text, TOOL_SCHEMAS)
        source = "text" if parsed.calls else "none"
    calls = [replace(call, id=f"{id_prefix}_{i}") for i, call in enumerate(parsed.calls)]
    return ReplyParse(
        calls, str(parsed.parse_class), source, list(parsed.problems), parsed.content, raw
    )


def build_graph(
    llm: BaseChatModel, deps: AgentDeps, checkpointer: BaseCheckpointSaver | None = None
) -> CompiledStateGraph:
    """Compile the agent; with a checkpointer, conversations persist by ``thread_id``."""
    nodes = _Nodes(llm, deps)
    graph = StateGraph(AgentState)
    graph.add_node("start", nodes.start)
    graph.add_node("plan", nodes.plan)
    graph.add_node("tools", build_tool_node(nodes.tools))
    graph.add_node("observe", nodes.observe)
    graph.add_node("refer", nodes.refer)
    graph.add_node("respond", nodes.respond)
    graph.add_edge(START, "start")
    graph.add_conditional_edges(
        "start", _after_start, {"plan": "plan", "refer": "refer", "respond": "respond"}
    )
    graph.add_conditional_edges("plan", _after_plan, {"tools": "tools", "respond": "respond"})
    graph.add_edge("tools", "observe")
    graph.add_conditional_edges("observe", _after_observe, {"plan": "plan", "respond": "respond"})
    graph.add_edge("refer", "respond")
    graph.add_edge("respond", END)
    return graph.compile(checkpointer=checkpointer)


def model_id_of(llm: BaseChatModel) -> str:
    for attribute in ("model_name", "model", "model_id"):
        value = getattr(llm, attribute, None)
        if isinstance(value, str) and value:
            return value
    return type(llm).__name__


class FacetCache:
    """The catalog's facets, read once on first use (``tools.search.facets``); empty when the
    index cannot be read, so a broken index never breaks a chat."""

    def __init__(self, toolbox: AgentToolbox) -> None:
        self.toolbox = toolbox
        self._facets: Facets | None = None

    def __call__(self) -> Facets:
        if self._facets is None:
            from tools.search.facets import read_facets

            try:
                self._facets = read_facets(getattr(self.toolbox, "lexical", None))
            except Exception:  # a missing or failing index: match no facet values
                self._facets = Facets()
        return self._facets


# -- routing ---------------------------------------------------------------------------------


def _after_start(state: AgentState) -> str:
    if state.get("composed_text") is not None:
        return "respond"
    reference = state.get("reference")
    if reference and reference["kind"] in ("details", "compare"):
        return "refer"
    return "plan"


def _after_plan(state: AgentState) -> str:
    last = state["messages"][-1]
    if isinstance(last, AIMessage) and last.tool_calls and state.get("stop_reason") is None:
        return "tools"
    return "respond"


def _after_observe(state: AgentState) -> str:
    return "respond" if state.get("stop_reason") is not None else "plan"


def writer_request(deps: AgentDeps, query_text: str) -> Prompt:
    """The writer prompt the query model sees in composed mode: the one the policy was trained
    on (``deps.writer_style``). The expand prompt needs the embedded index's term statistics;
    on a lexical backend without them (Elasticsearch) the rewrite prompt is used. Its candidate
    words come from the concept index, or from RM3 feedback while that index is building."""
    lexical = getattr(deps.toolbox, "lexical", None) if deps.writer_style == "expand" else None
    if not isinstance(lexical, FeedbackIndex):
        return styled_prompt(SEARCH_PRODUCTS, "rewrite", query_text)
    return styled_prompt(SEARCH_PRODUCTS, "expand", query_text, deps.toolbox, fallback=True)


def writer_messages(deps: AgentDeps, query_text: str) -> list[AnyMessage]:
    """``writer_request`` as chat messages (the worked example's call as an assistant turn)."""
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [
        kinds[m["role"]](content=str(m["content"]))
        for m in writer_request(deps, query_text).messages
    ]


# -- nodes -----------------------------------------------------------------------------------


class _Nodes:
    def __init__(self, llm: BaseChatModel, deps: AgentDeps) -> None:
        self.llm = llm
        self.deps = deps
        self.limits = deps.limits
        self.prose = deps.prose
        self.facets = deps.facets or FacetCache(deps.toolbox)
        self.tools = AgentTools(deps.toolbox, deps.limits)
        self.llm_with_tools: Runnable = _bind_tools(llm, tool_schemas())
        self.query_writer: Runnable = _bind_tools(llm, [schema_for(SEARCH_PRODUCTS)]).bind(
            max_tokens=deps.limits.call_max_tokens
        )

    def start(self, state: AgentState) -> dict[str, Any]:
        now = time.time()
        last_human = next(m for m in reversed(state["messages"]) if isinstance(m, HumanMessage))
        text = last_human.text
        constraints = Constraints.from_dict(state.get("constraints"))
        last_shown = list(state.get("last_shown") or [])
        update: dict[str, Any] = {
            "messages": _close_interrupted_calls(state["messages"]),
            "conversation_id": state.get("conversation_id") or "",
            "turn": int(state.get("turn") or 0) + 1,
            "user_text": text,
            "judged": state.get("judged") or {},
            "query_id": state.get("query_id"),
            "turn_started_at": now,
            "turn_deadline": now + self.limits.turn_timeout_s,
            "tool_calls_used": 0,
            "steps": [],
            "turn_product_ids": [],
            "stop_reason": None,
            "answer_text": None,
            "reference": None,
            "changes": [],
            "new_product": False,
            "relaxed": [],
            "rounds": [],
            "composed_text": None,
            "last_shown": last_shown,
        }
        reference = find_reference(text, len(last_shown))
        if reference is not None and reference.kind in ("details", "compare"):
            update["reference"] = asdict(reference)
            update["constraints"] = constraints.to_dict()
            update["active"] = constraints.to_dict()
            return update
        if reference is not None:  # "more like 2": that product's words, the same filters
            position = reference.positions[0]
            if not 1 <= position <= len(last_shown):
                update["reference"] = {"kind": "details", "positions": [position]}
                return update
            source = last_shown[position - 1]
            words = [w for w in content_words(str(source.get("title") or ""))][:6]
            constraints = replace(constraints, terms=tuple(words), attributes=())
            update["reference"] = asdict(reference)
            update["changes"] = [f"more like #{position}"]
        else:
            change = update_constraints(constraints, text, self.facets(), shown_prices(last_shown))
            constraints = change.constraints
            update["changes"] = change.changes
            update["new_product"] = change.new_product
        update["constraints"] = constraints.to_dict()
        update["active"] = constraints.to_dict()
        if not constraints.searchable():
            update["composed_text"] = compose_clarify(constraints)
            update["stop_reason"] = "clarify"
        return update

    def plan(self, state: AgentState) -> dict[str, Any]:
        if time.time() >= state["turn_deadline"]:
            return {"stop_reason": "timeout"}
        rounds = list(state.get("rounds") or [])
        steps = list(state.get("steps") or [])
        active = Constraints.from_dict(state.get("active"))
        words = active.query().lower()
        searched_words = any(
            s["decision"] in ("fallback_search", "relax")
            or any(str(c["arguments"].get("query", "")).lower() == words for c in s["parsed_calls"])
            for s in steps
        )
        nothing_yet = bool(rounds) and not state.get("turn_product_ids")
        if nothing_yet and not searched_words:
            # the model's call found nothing (or failed): the request's own words first
            call = graph_call(active, f"call_t{state['turn']}_words")
            decision = Decision("fallback_search", [call], ["the model's call found nothing"])
            steps.append(graph_step(len(state["messages"]), decision))
            return {"steps": steps, "messages": [call_message("", [call])]}
        tried_concepts = any(
            c["name"] == SEARCH_CONCEPTS for step in steps for c in step["parsed_calls"]
        )
        if nothing_yet and not tried_concepts:
            # no product has these words: the concept index may know what they mean
            # ("photography" -> cameras); while it is missing or building, the tool falls back
            # to the keyword index on its own
            concepts = apply_to_call({"concepts": [active.query()]}, active)
            call = ParsedToolCall(SEARCH_CONCEPTS, concepts, f"call_t{state['turn']}_concepts")
            decision = Decision("concepts_search", [call], ["no keyword match: searched concepts"])
            steps.append(graph_step(len(state["messages"]), decision))
            return {"steps": steps, "messages": [call_message("", [call])]}
        if nothing_yet:
            relaxed = list(state.get("relaxed") or [])
            step = next_relaxation(active) if len(relaxed) < self.limits.max_relaxations else None
            if step is not None:
                label, loosened = step
                call = graph_call(loosened, f"call_t{state['turn']}r{len(relaxed)}")
                decision = Decision("relax", [call], [f"nothing matched: dropped {label}"])
                steps.append(graph_step(len(state["messages"]), decision))
                return {
                    "steps": steps,
                    "active": loosened.to_dict(),
                    "relaxed": [*relaxed, label],
                    "messages": [call_message("", [call])],
                }
        if rounds and (self.prose == "composed" or state.get("model_problem")):
            return {"stop_reason": "answered"}
        reused = (state.get("written_queries") or {}).get(active.query())
        if self.prose == "composed" and reused and not rounds:
            # the same words as an earlier turn ("only Logitech", "cheaper" change filters,
            # not words): the model's query for them again, at no model time
            call = ParsedToolCall(
                SEARCH_PRODUCTS,
                apply_to_call({"query": reused}, active),
                f"call_t{state['turn']}_reused",
            )
            note = f"reused the model's query {reused!r} for {active.query()!r}"
            decision = Decision("reused_query", [call], [note])
            steps.append(graph_step(len(state["messages"]), decision))
            return {"steps": steps, "messages": [call_message("", [call])]}
        return self._ask_model(state, rounds, steps, active)

    def _ask_model(
        self,
        state: AgentState,
        rounds: list[dict[str, Any]],
        steps: list[dict[str, Any]],
        active: Constraints,
    ) -> dict[str, Any]:
        budget_left = self.limits.max_tool_calls - int(state.get("tool_calls_used") or 0)
        messages = state["messages"]
        if self.prose == "composed":
            prompt: list[AnyMessage] = writer_messages(self.deps, active.query())
            model, note, show = self.query_writer, None, False
        else:
            note = f"The shopper wants: {active.describe()}." if not active.is_empty() else None
            if budget_left <= 0:
                note = f"{note}\n\n{BUDGET_NOTE}" if note else BUDGET_NOTE
            prompt = build_prompt(messages, self.limits.history_turns, note)
            model = self.llm_with_tools if budget_left > 0 else self.llm
            show = True
        started = time.perf_counter()
        deadline = state["turn_deadline"]
        if not rounds and deadline - time.time() > 2 * SEARCH_RESERVE_S:
            deadline -= SEARCH_RESERVE_S  # keep time to search the shopper's words
        call_prefix = f"call_t{state['turn']}s{len(steps)}"
        try:
            reply, timed_out = _generate(model, prompt, deadline, show=show)
            parse: ReplyParse | None = parse_reply(reply, id_prefix=call_prefix)
            failure = None
        except Exception as error:  # the model server is down or refused: search anyway
            reply, timed_out, parse, failure = AIMessage(""), False, None, one_line(error)
        decision = self._decide(state, parse, active, rounds, budget_left, timed_out, failure)
        step = model_step(len(messages), prompt, reply, parse, decision, started)
        steps.append(step)
        update: dict[str, Any] = {
            "steps": steps,
            "stop_reason": decision.stop_reason,
            "answer_text": decision.answer_text,
            "constraints": decision.constraints.to_dict() if decision.constraints else None,
        }
        if update["constraints"] is None:
            del update["constraints"]
        else:
            update["active"] = update["constraints"]
        if decision.calls:
            if decision.kind == "tool_calls":
                used = int(state.get("tool_calls_used") or 0)
                update["tool_calls_used"] = used + len(decision.calls)
            content = parse.content if parse is not None and decision.kind == "tool_calls" else ""
            update["messages"] = [call_message(content, decision.calls)]
        elif decision.answer_text is not None:
            update["messages"] = [AIMessage(content=decision.answer_text, id=_new_id())]
        if failure is not None:
            update["model_problem"] = failure
        if self.prose == "composed" and decision.kind == "tool_calls" and decision.calls:
            written = dict(state.get("written_queries") or {})
            written[active.query()] = str(decision.calls[0].arguments.get("query") or "")
            update["written_queries"] = written
        return update

    def _decide(
        self,
        state: AgentState,
        parse: ReplyParse | None,
        active: Constraints,
        rounds: list[dict[str, Any]],
        budget_left: int,
        timed_out: bool,
        failure: str | None,
    ) -> Decision:
        problems = list(parse.problems) if parse is not None else [f"model error: {failure}"]
        found = [c for c in (parse.calls if parse is not None else []) if usable(c)]
        if self.prose == "composed":
            found = [c for c in found if c.name == SEARCH_PRODUCTS]
        if timed_out:
            problems.append("the model ran out of time")
        if found and budget_left > 0 and not timed_out:
            if len(found) > budget_left:
                problems.append(f"over budget: {len(found) - budget_left} call(s) dropped")
            state_after = active
            calls: list[ParsedToolCall] = []
            for call in found[:budget_left]:
                if call.name in _SEARCHES:
                    state_after, notes = absorb_call(
                        state_after, call.arguments, _shopper_words(state), self.facets()
                    )
                    problems.extend(notes)
            for call in found[:budget_left]:
                if call.name in _SEARCHES:
                    arguments = apply_to_call(call.arguments, state_after)
                    problems.extend(overridden(call.arguments, arguments))
                    if (
                        self.prose == "composed"
                        and call.name == SEARCH_PRODUCTS
                        and not shares_words(str(arguments.get("query") or ""), state_after)
                    ):
                        problems.append(
                            f"query {arguments.get('query')!r} shares no word with the request: "
                            "searched the request's words instead"
                        )
                        arguments = apply_to_call({"query": state_after.query()}, state_after)
                    call = ParsedToolCall(call.name, arguments, call.id)
                calls.append(call)
            changed = state_after if state_after != active else None
            return Decision("tool_calls", calls, problems, constraints=changed)
        if not rounds:
            # No usable call (a small model often chats instead of searching), a model error or
            # a slow model: the graph searches the request's words, so every request searches.
            call = graph_call(active, f"call_t{state['turn']}_fallback")
            return Decision("fallback_search", [call], problems)
        if timed_out:
            return Decision("timeout", [], problems, "timeout")
        text = parse.content.strip() if parse is not None else ""
        stop = "answered" if budget_left > 0 else "budget"
        return Decision("answer", [], problems, stop, text)

    def observe(self, state: AgentState) -> dict[str, Any]:
        messages = state["messages"]
        last_ai = max(i for i, m in enumerate(messages) if isinstance(m, AIMessage))
        requested = {c["id"]: c for c in messages[last_ai].tool_calls}  # type: ignore[union-attr]
        judged = state.get("judged") or {}
        active = Constraints.from_dict(state.get("active"))
        skip = _similar_source(state)
        records: list[ToolCallRecord] = []
        found: dict[str, Any] = {}
        turn_ids = list(state.get("turn_product_ids") or [])
        total = kept = 0
        raw: list[str] = []
        #: The text query of each call whose products are kept ("" for one without, e.g. concepts)
        queries: list[str] = []
        for message in messages[last_ai + 1 :]:
            if not isinstance(message, ToolMessage):
                continue
            call = requested.get(message.tool_call_id, {"name": message.name or "", "args": {}})
            record = tool_record(message, call)
            artifact = message.artifact if isinstance(message.artifact, dict) else {}
            products = artifact.get("products") or []
            total += int(artifact.get("total") or 0)
            for product in products:
                found.setdefault(product["id"], product)
                raw.append(product["id"])
                if product["id"] == skip or not active.allows(product):
                    continue
                kept += 1
                query = str(call["args"].get("query") or "")
                if query not in queries:
                    queries.append(query)
                if product["id"] not in turn_ids:
                    turn_ids.append(product["id"])
            if judged and record.attempts:
                record.ndcg_at_10 = judged_ndcg([h.product_id for h in record.hits], judged)
            records.append(record)
        steps = list(state.get("steps") or [])
        if steps:
            # wall time of the tools round: parallel calls overlap, so their sum would overstate it
            tools_wall_ms = (time.time() - steps[-1]["ended_at"]) * 1000
            steps[-1] = {
                **steps[-1],
                "tool_calls": [asdict(r) for r in records],
                "tools_wall_ms": round(tools_wall_ms, 3),
            }
        typed = [
            i for i in turn_ids if active.names_product(found.get(i) or retrieved_of(state, i))
        ]
        if typed:  # "only Logitech" keeps showing mice: the results that name the product
            turn_ids = typed
        round_ = {"total": total, "kept": kept, "raw": raw, "queries": queries}
        rounds = [*(state.get("rounds") or []), round_]
        update: dict[str, Any] = {
            "steps": steps,
            "retrieved": found,
            "turn_product_ids": turn_ids,
            "rounds": rounds,
        }
        if time.time() >= state["turn_deadline"]:
            update["stop_reason"] = "timeout"
        return update

    def refer(self, state: AgentState) -> dict[str, Any]:
        reference = Reference(state["reference"]["kind"], tuple(state["reference"]["positions"]))
        shown = list(state.get("last_shown") or [])
        valid = [p for p in reference.positions if 1 <= p <= len(shown)]
        missing = [p for p in reference.positions if p not in valid]
        products: list[tuple[int, Product]] = []
        for position in valid:
            product = self._current(shown[position - 1])
            if product is not None:
                products.append((position, product))
        if missing or not products:
            text = compose_missing(missing or list(reference.positions), len(shown))
        elif reference.kind == "compare" and len(products) > 1:
            text = compose_comparison(products)
        else:
            asked = _question_words(state["user_text"])
            text = "\n\n".join(compose_details(pos, p, asked) for pos, p in products)
        return {"composed_text": text, "stop_reason": "reference"}

    def respond(self, state: AgentState) -> dict[str, Any]:
        writer = get_stream_writer()
        stop_reason = state.get("stop_reason") or "answered"
        model_problem = state.get("model_problem")
        if model_problem and stop_reason == "answered":
            stop_reason = "model_error"
        active = Constraints.from_dict(state.get("active"))
        relaxed = list(state.get("relaxed") or [])
        retrieved = state.get("retrieved") or {}
        turn_ids = list(state.get("turn_product_ids") or [])
        last_shown = list(state.get("last_shown") or [])
        violations: list[str] = []
        written_by = "composed"
        if state.get("composed_text") is not None:
            text = str(state["composed_text"])
            products = self._reread(last_shown) if stop_reason == "reference" else []
        else:
            grounded = ground_answer(
                state.get("answer_text") or "",
                turn_ids=turn_ids,
                retrieved=retrieved,
                lookup=self._catalog_lookup,
                limit=self.limits.shown_products,
                shopper_text=_shopper_words(state),
            )
            violations = list(grounded.violations)
            passes = self.prose == "model" and prose_passes(
                state.get("answer_text") or "", grounded.text, violations
            )
            if not passes and grounded.cited_ids:  # the list follows the reply the shopper reads
                grounded = ground_answer(
                    "",
                    turn_ids=turn_ids,
                    retrieved=retrieved,
                    lookup=self._catalog_lookup,
                    limit=self.limits.shown_products,
                )
            products = _renumber([p for p in grounded.products if active.allows(p)])
            if passes:
                text, written_by = grounded.text, "model"
            elif products:
                total = max((r["total"] for r in state.get("rounds") or []), default=0)
                text = compose_results(
                    active,
                    products,
                    total=max(total, len(products)),
                    relaxed=relaxed,
                    searched=_searched_as(state),
                )
            elif stop_reason == "timeout" or (
                stop_reason in ("model_error", "budget") and not state.get("rounds")
            ):
                text = fallback_answer(stop_reason, 0)
            else:
                facets = [retrieved[i] for i in _last_raw(state) if i in retrieved]
                brands = [(v.name, v.count) for v in self.facets().brands[:5]]
                text = compose_nothing(
                    active, relaxed=relaxed, facets=facets, catalog_brands=brands
                )
            if stop_reason == "timeout" and products:
                text = f"{fallback_answer('timeout', len(products))} {text}"
            if model_problem:
                text = f"The model is unavailable ({model_problem}); I searched your words. {text}"
        shown = [shown_from_dict(p) for p in products]
        follows = _follows(state)
        record = self._record(state, text, products, violations, stop_reason, active, relaxed)
        log_error = None
        if self.deps.log is not None:
            try:
                self.deps.log.append(record)
            except OSError as error:
                log_error = f"trajectory not saved: {one_line(error)}"
        if shown:
            writer(ProductsShown(shown))
        writer(
            FinalAnswer(
                text=text,
                products=shown,
                stop_reason=stop_reason,
                episode_id=record.episode_id,
                reward=record.reward.total,
                violations=violations,
                filters=active.describe() if state.get("composed_text") is None else "",
                relaxed=relaxed,
                written_by=written_by,
            )
        )
        writer(EpisodeRecorded(record, log_error, follows))
        messages = state["messages"]
        last = messages[-1]
        answer = AIMessage(content=text, id=last.id if _is_answer(last) else _new_id())
        summary = {
            "turn": state["turn"],
            "episode_id": record.episode_id,
            "user_text": state["user_text"],
            "answer": text,
            "products": products,
            "stop_reason": stop_reason,
            "filters": active.describe(),
        }
        update: dict[str, Any] = {
            "messages": [answer],
            "turns": [*(state.get("turns") or []), summary],
            "model_problem": None,
        }
        if products and stop_reason != "reference":
            update["last_shown"] = products
        return update

    # -- catalog -----------------------------------------------------------------------------

    def _catalog_lookup(self, product_id: str) -> Product | None:
        return call_with_timeout(
            lambda: self.deps.toolbox.get(product_id), CATALOG_REREAD_TIMEOUT_S
        )

    def _current(self, shown: Mapping[str, Any]) -> Product | None:
        """A shown product as the catalog has it now (``None`` once it is gone)."""
        try:
            return self._catalog_lookup(str(shown["id"]))
        except Exception:  # the catalog is down: what was shown is still the best we have
            copy = {"title": shown.get("title") or str(shown["id"]), **shown}
            copy.pop("position", None)
            copy.pop("category", None)
            return Product.from_dict(copy)

    def _reread(self, shown: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The last list again, same positions, with the catalog's current titles and prices."""
        from agent.conversation.grounding import shown_dict

        out = []
        for item in shown:
            product = self._current(item)
            if product is not None:
                out.append(shown_dict(int(item["position"]), product))
        return out

    # -- the episode record ------------------------------------------------------------------

    def _record(
        self,
        state: AgentState,
        text: str,
        products: list[dict[str, Any]],
        violations: list[str],
        stop_reason: str,
        active: Constraints,
        relaxed: list[str],
    ) -> EpisodeRecord:
        messages = state["messages"]
        raw_steps = list(state.get("steps") or [])
        ends = [s["prompt_count"] for s in raw_steps[1:]] + [len(messages)]
        steps = [
            self._model_step(step, messages, end)
            for step, end in zip(raw_steps, ends, strict=False)
        ]
        model_ms = sum(s.model_ms for s in steps)
        tool_ms = sum(s.get("tools_wall_ms", 0.0) for s in raw_steps)
        total_ms = (time.time() - state["turn_started_at"]) * 1000
        searched = bool(state.get("rounds"))
        reward = episode_reward(
            steps,
            judged=state.get("judged"),
            shown_count=len(products),
            violations=violations,
            relaxed=len(relaxed),
            searched=searched,
        )
        return EpisodeRecord(
            conversation_id=state.get("conversation_id") or "",
            turn=state["turn"],
            source=self.deps.source,
            model_id=self.deps.model_id,
            model_checkpoint=self.deps.model_checkpoint,
            dataset=self.deps.dataset,
            catalog_version=self.deps.catalog_version(),
            user_text=state["user_text"],
            steps=steps,
            final_answer=text,
            recommended=products,
            grounding_violations=list(violations),
            stop_reason=stop_reason,
            reward=reward,
            latency=Latency(
                model_ms=round(model_ms, 3),
                tool_ms=round(tool_ms, 3),
                graph_ms=round(max(0.0, total_ms - model_ms - tool_ms), 3),
                total_ms=round(total_ms, 3),
            ),
            started_at=_iso(state["turn_started_at"]),
            finished_at=utc_now(),
            query_id=state.get("query_id"),
        )

    def _model_step(
        self, step: Mapping[str, Any], messages: Sequence[AnyMessage], end: int
    ) -> ModelStep:
        count = step["prompt_count"]
        return ModelStep(
            prompt_messages=list(step.get("prompt") or []),
            raw_output=step["raw_output"],
            raw_tool_calls=step["raw_tool_calls"],
            parsed_calls=step["parsed_calls"],
            parse_class=step["parse_class"],
            parse_source=step["parse_source"],
            problems=step["problems"],
            decision=step["decision"],
            model_ms=step["model_ms"],
            tool_calls=[ToolCallRecord.from_dict(c) for c in step.get("tool_calls") or []],
            output_messages=to_openai(messages[count:end]),
        )


# -- helpers ---------------------------------------------------------------------------------


def _question_words(text: str) -> list[str]:
    """What a reference asks about ("is the second one wireless?" -> ["wireless"])."""
    skip = {
        "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "tenth", "last", "number", "details", "detail", "about", "tell", "more", "compare",
        "option", "item", "pick", "result",
    }  # fmt: skip
    return [
        w for w in content_words(re.sub(r"#?\d+\w*", " ", text)) if w not in skip and len(w) > 2
    ]


def _shopper_words(state: AgentState) -> str:
    return " ".join(str(m.content) for m in state["messages"] if isinstance(m, HumanMessage))


def _similar_source(state: AgentState) -> str | None:
    reference = state.get("reference")
    if not reference or reference["kind"] != "similar":
        return None
    shown = state.get("last_shown") or []
    position = reference["positions"][0]
    return str(shown[position - 1]["id"]) if 1 <= position <= len(shown) else None


def retrieved_of(state: AgentState, product_id: str) -> dict[str, Any]:
    return dict((state.get("retrieved") or {}).get(product_id) or {})


def _searched_as(state: AgentState) -> str:
    """The one text query that found every kept product of the turn, or "" when the list came
    from several searches or one without a text query (then no single query describes it)."""
    queries = {q for r in state.get("rounds") or [] for q in r.get("queries") or []}
    return queries.pop() if len(queries) == 1 else ""


def _last_raw(state: AgentState) -> list[str]:
    rounds = state.get("rounds") or []
    return list(rounds[-1].get("raw") or []) if rounds else []


def _follows(state: AgentState) -> str | None:
    if int(state.get("turn") or 1) <= 1:
        return None
    if state.get("reference"):
        return "reference"
    if state.get("new_product") or "restart" in (state.get("changes") or []):
        return "new"
    return "refinement" if state.get("changes") else "new"


def _renumber(products: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{**p, "position": i} for i, p in enumerate(products, start=1)]


def _generate(
    model: Runnable, prompt: list[AnyMessage], deadline: float, *, show: bool = True
) -> tuple[AIMessage, bool]:
    """Stream the reply, stopping at the deadline; with ``show``, stream its prose as it comes
    (never tool-call markup). Without it nothing is streamed: the shopper will not see it."""
    writer = get_stream_writer()
    visible = _VisibleText()
    merged: AIMessageChunk | AIMessage | None = None
    timed_out = False
    # The request may take only what is left of the turn (an OpenAI request option).
    for chunk in model.stream(prompt, timeout=max(1.0, deadline - time.time())):
        merged = chunk if merged is None else merged + chunk  # type: ignore[operator]
        if show and isinstance(chunk.content, str) and chunk.content:
            shown = visible.feed(chunk.content)
            if shown:
                writer(TextChunk(shown))
        if time.time() >= deadline:
            timed_out = True
            break
    if merged is None:
        return AIMessage(content=""), timed_out
    if isinstance(merged, AIMessageChunk):
        return message_chunk_to_message(merged), timed_out  # type: ignore[return-value]
    return merged, timed_out


class _VisibleText:
    """The part of streamed text that is prose, cut by grounding's own rule (``prose_end``):
    tool-call markup, parroted tool data and bare JSON calls are never shown."""

    def __init__(self) -> None:
        self.text = ""
        self.emitted = 0

    def feed(self, chunk: str) -> str:
        self.text += chunk
        safe = prose_end(self.text, streaming=True)
        out = self.text[self.emitted : safe] if safe > self.emitted else ""
        self.emitted = max(self.emitted, safe)
        return out


def _bind_tools(llm: BaseChatModel, schemas: Sequence[Mapping[str, Any]]) -> Runnable:
    try:
        return llm.bind_tools(list(schemas))
    except NotImplementedError:  # tools then come back as text, which plan parses anyway
        return llm


def _openai_call(call: Mapping[str, Any]) -> dict[str, Any]:
    args = call.get("args")
    return {
        "id": call.get("id") or "",
        "type": "function",
        "function": {
            "name": call.get("name") or "",
            "arguments": args if isinstance(args, str) else json.dumps(args or {}),
        },
    }


def _close_interrupted_calls(messages: Sequence[AnyMessage]) -> list[AIMessage]:
    """Replacements for assistant messages whose tool calls never got results.

    A turn interrupted mid-tools (Ctrl-C, a crash) leaves such calls in the history, and
    OpenAI-compatible servers refuse a history with unanswered calls; the replacement (same
    id, so it stays in place) keeps only the calls that were answered.
    """
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    fixed = []
    for message in messages:
        if isinstance(message, AIMessage) and message.tool_calls:
            kept = [c for c in message.tool_calls if c["id"] in answered]
            if len(kept) != len(message.tool_calls):
                content = message.content or "(interrupted before the search finished)"
                fixed.append(AIMessage(content=content, tool_calls=kept, id=message.id))
    return fixed


def _is_answer(message: AnyMessage) -> bool:
    return isinstance(message, AIMessage) and not message.tool_calls


def _new_id() -> str:
    return uuid.uuid4().hex


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
