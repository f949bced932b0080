"""Enumerated rollouts of the expand action: every candidate call built and scored, no model.

Sampling the 135M model on a CPU yields about 2 calls a second, and most samples of one
request are the same copy of the shopper's words. The expand action's choices are few and
known in advance, so they can be written down instead of sampled: for each training request,
with the hints the expand prompt shows (``tools.search.expand_hints``: the request in the
catalog's spelling, and the same 8 candidate words in the same order):

1. ``copy`` — ``search_products(query=<the request as shown>)``: the ``spelled`` baseline (the
   raw search where the respelling changed nothing, gain 0);
2. ``add:<word>`` — the request plus one candidate word, for each of the 8;
3. ``add:<a>+<b>`` — plus two of the top ``pair_top`` candidate words, each pair.

Each call is written as the exact text the model would write after the expand prompt
(``chat_template.tool_call_text``), parsed by the same parser, searched through the one
tool-call path (``rl.rewards.LiveSearch`` → ``agent.protocol.tool_search``) and scored with the
same reward as a sampled rollout (``gain`` by default: format + NDCG@10 − raw NDCG@10). Each
becomes one rollout record of the policy ``ENUMERATED_MODEL_ID``, the same shape
``shopagent collect`` writes, so ``rl.datasets`` builds pairs from them unchanged.

Copy is sample 0 on purpose: DPO's best-versus-worst pairs break ties towards the lower
sample index, so where nothing beats the raw search, copying is the chosen reply and the
policy learns to keep the shopper's words when no candidate helps.

This is off-policy data from the search system's own feedback: the judgments score the calls,
the model never sees the catalog (the prompt holds only the shopper's words and the candidate
words any expand prompt shows).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.protocol.chat_template import tool_call_text
from agent.protocol.tool_calls import ParseClass, parse_tool_calls
from agent.protocol.tool_schemas import SEARCH_PRODUCTS, schema_for
from agent.protocol.writer_prompts import build_expand_prompt
from agent.runtime.generation import Generation
from agent.trajectory.log import TrajectoryLog, utc_now
from rl.rewards import LiveSearch
from rl.rollouts import (
    CollectConfig,
    CollectProgress,
    CollectSummary,
    RolloutWriter,
    default_rollout_log,
)
from tools.catalog.judgments import Judgments, Query
from tools.errors import BadInput
from tools.search.expand_hints import expand_hints
from tools.search.neighbour_words import DenseNeighbours
from tools.search.prf import FeedbackIndex
from tools.settings.config import Settings

#: The rollouts' policy name: no model wrote them, the enumeration did.
ENUMERATED_MODEL_ID = "enumerated"
#: Pairs of added words are taken from this many top candidate words (3 → 3 pairs).
PAIR_TOP = 3


@dataclass(frozen=True, slots=True)
class CandidateCall:
    """One call of the expand action: a short label for reading logs, and its arguments."""

    label: str
    arguments: dict[str, Any]

    def text(self) -> str:
        """The reply the model would write for this call."""
        return tool_call_text(SEARCH_PRODUCTS, self.arguments)


def expand_candidate_calls(
    query_text: str,
    candidates: Sequence[str],
    *,
    pair_top: int = PAIR_TOP,
) -> list[CandidateCall]:
    """The calls of the expand action for one request, copy first (see the module doc).

    The argument order (``query``, ``add_terms``) is the worked example's, so the text matches
    what the prompt teaches.
    """
    if pair_top < 0:
        raise BadInput("pair_top must be >= 0")
    words = list(dict.fromkeys(w for w in candidates if w.strip()))
    calls = [CandidateCall("copy", {"query": query_text})]
    calls += [CandidateCall(f"add:{w}", {"query": query_text, "add_terms": [w]}) for w in words]
    calls += [
        CandidateCall(f"add:{a}+{b}", {"query": query_text, "add_terms": [a, b]})
        for a, b in itertools.combinations(words[:pair_top], 2)
    ]
    return calls


def collect_enumerated(
    queries: Sequence[Query],
    judgments: Judgments,
    index: FeedbackIndex,
    search: LiveSearch,
    log: TrajectoryLog,
    config: CollectConfig,
    *,
    dense: DenseNeighbours | None = None,
    catalog_version: str | None = None,
    progress: CollectProgress | None = None,
) -> CollectSummary:
    """Build, search, score and log every candidate call of every request not logged yet.

    Resumable like ``rl.rollouts.collect`` (the same ``RolloutWriter``): (request, sample)
    pairs already in the log for ``ENUMERATED_MODEL_ID`` and the expand strategy are skipped.
    ``summary.planned`` counts the calls of the requests seen (a request's count depends on
    its candidates).
    """
    if config.strategy != "expand":
        raise BadInput("enumerated candidates exist for the expand strategy only")
    writer = RolloutWriter(
        log,
        search,
        judgments,
        config,
        model_id=ENUMERATED_MODEL_ID,
        queries=len(queries),
        catalog_version=catalog_version,
    )
    schemas = [schema_for(SEARCH_PRODUCTS)]
    for number, query in enumerate(queries, start=1):
        hints = expand_hints(index, query.text, dense)
        prompt = build_expand_prompt(hints)
        calls = expand_candidate_calls(hints.text, hints.words)
        began_at = utc_now()
        for sample_index in writer.pending(query, len(calls)):
            text = calls[sample_index].text()
            parsed = parse_tool_calls(text, schemas)
            if parsed.parse_class != ParseClass.VALID:  # the writer above is wrong: a bug
                raise AssertionError(f"enumerated call {text!r} parses as {parsed.parse_class}")
            generation = Generation(text=text, parsed=parsed, prompt_tokens=0, completion_ids=())
            writer.score(query, sample_index, prompt, generation, model_ms=0.0, started_at=began_at)
        if progress is not None and (number % 50 == 0 or number == len(queries)):
            progress(number, len(queries))
    return writer.finish()


def collect_enumerated_rollouts(
    settings: Settings,
    config: CollectConfig,
    *,
    log_path: Path | None = None,
    progress: CollectProgress | None = None,
) -> CollectSummary:
    """``shopagent collect --strategy expand --candidates enumerate``: no model is loaded."""
    from tools.catalog.datasets import load_dataset
    from tools.catalog.splits import select_split
    from tools.search_tools import SearchToolbox
    from tools.stores import read_manifest

    judgments = load_dataset(config.dataset, settings).judgments()
    chosen = select_split(judgments, config.dataset, config.split, config.n_queries)
    toolbox = SearchToolbox(settings, config.dataset)
    index = toolbox.lexical
    if not isinstance(index, FeedbackIndex):
        raise BadInput(
            "enumerated expand candidates read term statistics that only the embedded tantivy "
            f"index exposes; {index.name} has none (use SHOPAGENT_LEXICAL_BACKEND=tantivy)"
        )
    log = TrajectoryLog(log_path or default_rollout_log(settings, config.dataset, config.split))
    return collect_enumerated(
        list(chosen),
        chosen,
        index,
        LiveSearch(toolbox, size=config.k),
        log,
        config,
        dense=toolbox.concepts,
        catalog_version=read_manifest(settings, config.dataset).get("catalog_version"),
        progress=progress,
    )
