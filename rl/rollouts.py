"""Collect rollouts: K candidate tool calls per training request, run live, scored and logged.

For each request of a split, the current policy writes ``samples`` candidate calls with the
batched in-process generator, from exactly the prompt ``shopagent eval`` gives it
(``agent.protocol.writer_prompts.build_prompt``): what is learned here is what is measured
there. Sample 0 is the greedy reply (what the policy does today, and what eval scores)
when ``greedy_first``; the others are sampled. Each call is run against the live index and
scored with
``rl.rewards.search_reward``; each sample becomes one ``EpisodeRecord`` (``source="rollout"``)
appended durably to a trajectory log.

Identity and resuming: a sample is the episode ``rollout:<model>:<strategy>:<query_id>`` turn
``<sample_index>``. Before generating, the log is read and every (query, sample) already
logged for this model and strategy is skipped (``RolloutWriter``, which ``rl.enumerated``
shares), so an interrupted collect continues where it stopped and a finished one is a no-op.
Rollouts of different models never collide, so one log can hold several rounds of the loop.
"""

from __future__ import annotations

import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.protocol.strategies import STRATEGIES
from agent.protocol.writer_prompts import Prompt, strategy_prompt
from agent.runtime.generation import Generation
from agent.trajectory.log import (
    EpisodeRecord,
    HitRecord,
    Latency,
    ModelStep,
    Reward,
    ToolAttempt,
    ToolCallRecord,
    TrajectoryLog,
    utc_now,
)
from rl.rewards import (
    DEFAULT_REWARD_SHAPE,
    NDCG_K,
    REWARD_SHAPES,
    LiveSearch,
    RawBaseline,
    RewardBreakdown,
    search_reward,
)
from tools.catalog.judgments import Judgments, Query
from tools.errors import BackendError, BadInput
from tools.settings.checks import flag_value
from tools.settings.checks import temperature as sampling_temperature
from tools.settings.config import Settings

ROLLOUT_SOURCE = "rollout"
#: What ``shopagent collect`` samples (``collect`` in the registry,
#: ``agent.protocol.strategies``): strategy -> the one tool its prompt offers.
STRATEGY_TOOLS: dict[str, str] = {
    spec.name: spec.writer.tool for spec in STRATEGIES.values() if spec.collect and spec.writer
}
#: Where a collect's candidate calls come from: the model's samples, or every call of the
#: expand action built without a model (``rl.enumerated``).
CANDIDATE_SOURCES = ("sample", "enumerate")
#: A rollout is a single model step: its budget is used up by that step.
ROLLOUT_STOP_REASON = "budget"

#: ``progress(samples done, samples in the plan)``, after every generated batch.
CollectProgress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class RolloutKey:
    """The group a rollout belongs to: one policy, one prompt style, one request."""

    model_id: str
    strategy: str
    query_id: str

    def __post_init__(self) -> None:
        if any(":" in part or not part for part in (self.model_id, self.strategy, self.query_id)):
            raise BadInput(f"rollout key parts must be non-empty and without ':': {self}")

    @property
    def conversation_id(self) -> str:
        return f"{ROLLOUT_SOURCE}:{self.model_id}:{self.strategy}:{self.query_id}"

    @classmethod
    def parse(cls, conversation_id: str) -> RolloutKey | None:
        parts = conversation_id.split(":")
        if len(parts) != 4 or parts[0] != ROLLOUT_SOURCE or not all(parts[1:]):
            return None
        return cls(parts[1], parts[2], parts[3])


@dataclass(frozen=True, slots=True)
class CollectConfig:
    dataset: str = "homedepot"
    split: str = "train"
    #: The first N requests of the split (its stable bucket order); None for all of them.
    n_queries: int | None = None
    samples: int = 8
    strategy: str = "policy"
    #: Sampling for samples 1..K-1. Temperature 1.0 mostly yields prose from a 135M model;
    #: 0.8 keeps most samples usable while still varying the query.
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 64
    #: Sequences per ``generate`` call.
    batch_size: int = 32
    greedy_first: bool = True
    seed: int = 0
    k: int = NDCG_K
    #: ``gain`` (NDCG over the raw search's, the default) or ``absolute`` (``rl.rewards``).
    reward: str = DEFAULT_REWARD_SHAPE
    #: ``sample`` (the model writes ``samples`` calls per request) or ``enumerate`` (every
    #: call of the expand action is built and scored without a model, ``rl.enumerated``).
    candidates: str = "sample"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGY_TOOLS:
            choices = sorted(STRATEGY_TOOLS)
            raise BadInput(f"unknown rollout strategy {self.strategy!r}; choose one of {choices}")
        if self.samples < 1:
            raise BadInput(f"samples must be at least 1, got {self.samples}")
        if self.n_queries is not None and self.n_queries < 1:
            raise BadInput(f"n_queries must be at least 1, got {self.n_queries}")
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise BadInput("batch_size and max_new_tokens must be at least 1")
        flag_value("--temperature", sampling_temperature, self.temperature)
        if self.temperature <= 0 and self.samples > 1 and not self.greedy_first:
            raise BadInput("sampling several candidates needs a temperature above 0")
        if not 0 < self.top_p <= 1:
            raise BadInput(f"top_p must be in (0, 1], got {self.top_p}")
        if self.reward not in REWARD_SHAPES:
            raise BadInput(f"unknown reward {self.reward!r}; choose one of {REWARD_SHAPES}")
        if self.candidates not in CANDIDATE_SOURCES:
            raise BadInput(
                f"unknown candidates {self.candidates!r}; choose one of {CANDIDATE_SOURCES}"
            )
        if self.candidates == "enumerate" and self.strategy != "expand":
            raise BadInput("enumerated candidates exist for the expand strategy only")

    @property
    def tool(self) -> str:
        return STRATEGY_TOOLS[self.strategy]


class Generator(Protocol):
    """What collecting needs of a generator (``agent.runtime.generation.LocalGenerator``)."""

    def generate(
        self,
        conversations: Sequence[Sequence[Mapping[str, Any]]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = ...,
        max_new_tokens: int = ...,
        temperature: float = ...,
        top_p: float = ...,
        seed: int | None = ...,
    ) -> list[Generation]: ...


@dataclass(slots=True)
class CollectSummary:
    queries: int
    planned: int
    skipped: int
    written: int = 0
    seconds: float = 0.0
    generation_s: float = 0.0
    search_s: float = 0.0
    reward_sum: float = 0.0
    ndcg_sum: float = 0.0
    parse_classes: Counter[str] = field(default_factory=Counter)

    @property
    def mean_reward(self) -> float:
        return self.reward_sum / self.written if self.written else 0.0

    @property
    def mean_ndcg(self) -> float:
        return self.ndcg_sum / self.written if self.written else 0.0

    @property
    def samples_per_s(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "planned": self.planned,
            "skipped": self.skipped,
            "written": self.written,
            "seconds": round(self.seconds, 3),
            "generation_s": round(self.generation_s, 3),
            "search_s": round(self.search_s, 3),
            "samples_per_s": round(self.samples_per_s, 3),
            "mean_reward": round(self.mean_reward, 6),
            "mean_ndcg": round(self.mean_ndcg, 6),
            "parse_classes": dict(self.parse_classes),
        }


# -- collecting -------------------------------------------------------------------------------


def logged_samples(log: TrajectoryLog, model_id: str, strategy: str) -> set[tuple[str, int]]:
    """(query_id, sample_index) of every rollout of this model and strategy already in the log."""
    done: set[tuple[str, int]] = set()
    for record in log.read().records:
        if record.get("source") != ROLLOUT_SOURCE:
            continue
        key = RolloutKey.parse(str(record.get("conversation_id", "")))
        if key is not None and key.model_id == model_id and key.strategy == strategy:
            done.add((key.query_id, int(record.get("turn", -1))))
    return done


class RolloutWriter:
    """The resume/score loop both ways of collecting share: sampled from the policy
    (``collect``) and enumerated from the action space (``rl.enumerated``).

    On opening, it reads which (request, sample) pairs the log already holds for ``model_id``
    and the config's strategy; ``pending`` plans a request's samples and names those still to
    do; ``score`` searches one candidate call live, scores it (against the raw search when the
    reward is the ``gain``), appends its record durably (``TrajectoryLog.append``) and counts
    it; ``finish`` returns the summary with its wall time.
    """

    def __init__(
        self,
        log: TrajectoryLog,
        search: LiveSearch,
        judgments: Judgments,
        config: CollectConfig,
        *,
        model_id: str,
        queries: int,
        model_checkpoint: str | None = None,
        catalog_version: str | None = None,
    ) -> None:
        self._started = time.perf_counter()
        self.log = log
        self.search = search
        self.judgments = judgments
        self.config = config
        self.model_id = model_id
        self.model_checkpoint = model_checkpoint
        self.catalog_version = catalog_version
        self.done = logged_samples(log, model_id, config.strategy)
        self.summary = CollectSummary(queries=queries, planned=0, skipped=0)
        self.baseline = (
            RawBaseline(search.backends, k=config.k) if config.reward == "gain" else None
        )

    def pending(self, query: Query, samples: int) -> list[int]:
        """The sample indices ``0..samples-1`` of ``query`` not logged yet (all are planned;
        the logged ones count as skipped)."""
        todo = [index for index in range(samples) if (query.id, index) not in self.done]
        self.summary.planned += samples
        self.summary.skipped += samples - len(todo)
        return todo

    def score(
        self,
        query: Query,
        sample_index: int,
        prompt: Prompt,
        generation: Generation,
        *,
        model_ms: float,
        started_at: str,
    ) -> RewardBreakdown:
        """Search one candidate call live, score it, append its record and count it."""
        gains = self.judgments.gains(query.id)
        raw = self.baseline(query.text, gains) if self.baseline is not None else None
        search = self.search
        search_started = time.perf_counter()
        breakdown = search_reward(generation.parsed, gains, search, k=self.config.k, raw_ndcg=raw)
        tool_ms = (time.perf_counter() - search_started) * 1000
        hits = _hits(search) if generation.parsed.calls and breakdown.error is None else []
        record = rollout_record(
            RolloutKey(self.model_id, self.config.strategy, query.id),
            sample_index,
            query,
            prompt,
            generation,
            breakdown,
            hits,
            model_ms=model_ms,
            tool_ms=tool_ms,
            model_checkpoint=self.model_checkpoint,
            dataset=self.config.dataset,
            catalog_version=self.catalog_version,
            started_at=started_at,
        )
        self.log.append(record)
        summary = self.summary
        summary.search_s += tool_ms / 1000
        summary.written += 1
        summary.reward_sum += breakdown.total
        summary.ndcg_sum += breakdown.ndcg
        summary.parse_classes[breakdown.parse_class] += 1
        return breakdown

    def finish(self) -> CollectSummary:
        self.summary.seconds = time.perf_counter() - self._started
        return self.summary


def collect(
    queries: Sequence[Query],
    judgments: Judgments,
    generator: Generator,
    search: LiveSearch,
    log: TrajectoryLog,
    config: CollectConfig,
    *,
    model_id: str,
    model_checkpoint: str | None = None,
    catalog_version: str | None = None,
    progress: CollectProgress | None = None,
) -> CollectSummary:
    """Sample, search, score and log every (query, sample) not logged yet; see the module doc."""
    writer = RolloutWriter(
        log,
        search,
        judgments,
        config,
        model_id=model_id,
        queries=len(queries),
        model_checkpoint=model_checkpoint,
        catalog_version=catalog_version,
    )
    pending = [(q, i) for q in queries for i in writer.pending(q, config.samples)]
    summary = writer.summary
    if progress is not None:
        progress(summary.skipped, summary.planned)
    for start in range(0, len(pending), config.batch_size):
        batch = pending[start : start + config.batch_size]
        greedy = [item for item in batch if config.greedy_first and item[1] == 0]
        sampled = [item for item in batch if not (config.greedy_first and item[1] == 0)]
        for items, temperature in ((greedy, 0.0), (sampled, config.temperature)):
            if items:
                _generate_and_log(items, temperature, generator, writer)
        if progress is not None:
            progress(summary.skipped + summary.written, summary.planned)
    return writer.finish()


def _generate_and_log(
    items: Sequence[tuple[Query, int]],
    temperature: float,
    generator: Generator,
    writer: RolloutWriter,
) -> None:
    config = writer.config
    backends = writer.search.backends
    prompts = [strategy_prompt(config.strategy, query.text, backends) for query, _ in items]
    first_query, first_index = items[0]
    seed = zlib.crc32(f"{config.seed}:{first_query.id}:{first_index}".encode())
    began_at = utc_now()
    generation_started = time.perf_counter()
    generations = generator.generate(
        [p.messages for p in prompts],
        tools=prompts[0].tools,
        max_new_tokens=config.max_new_tokens,
        temperature=temperature,
        top_p=config.top_p,
        seed=seed,
    )
    generation_s = time.perf_counter() - generation_started
    if len(generations) != len(items):
        raise BackendError(f"the generator answered {len(generations)} of {len(items)} prompts")
    writer.summary.generation_s += generation_s
    model_ms = generation_s * 1000 / len(items)
    for (query, index), prompt, generation in zip(items, prompts, generations, strict=True):
        writer.score(query, index, prompt, generation, model_ms=model_ms, started_at=began_at)


def _hits(search: LiveSearch) -> list[HitRecord]:
    results = search.last
    if results is None:
        return []
    return [HitRecord(hit.product_id, hit.rank, float(hit.score)) for hit in results.hits]


def rollout_record(
    key: RolloutKey,
    sample_index: int,
    query: Query,
    prompt: Prompt,
    generation: Generation,
    breakdown: RewardBreakdown,
    hits: list[HitRecord],
    *,
    model_ms: float,
    tool_ms: float,
    dataset: str,
    model_checkpoint: str | None = None,
    catalog_version: str | None = None,
    started_at: str | None = None,
) -> EpisodeRecord:
    """One scored sample as an episode (one model step, at most one executed tool call)."""
    parsed = generation.parsed
    calls: list[ToolCallRecord] = []
    if parsed.calls:
        call = parsed.calls[0]
        attempt = ToolAttempt(
            tool=call.name,
            arguments=dict(call.arguments),
            ok=breakdown.error is None,
            hits=hits,
            error=breakdown.error,
            tool_ms=round(tool_ms, 3),
        )
        calls.append(
            ToolCallRecord(
                call_id=call.id,
                name=call.name,
                arguments=dict(call.arguments),
                attempts=[attempt],
                ndcg_at_10=breakdown.ndcg,
            )
        )
    step = ModelStep(
        prompt_messages=[dict(m) for m in prompt.messages],
        raw_output=generation.text,
        raw_tool_calls=[],
        parsed_calls=[
            {"id": c.id, "name": c.name, "arguments": dict(c.arguments)} for c in parsed.calls
        ],
        parse_class=parsed.parse_class.value,
        parse_source="text",
        problems=list(parsed.problems),
        decision="tool_calls" if parsed.calls else "answer",
        model_ms=round(model_ms, 3),
        tool_calls=calls,
    )
    return EpisodeRecord(
        conversation_id=key.conversation_id,
        turn=sample_index,
        source=ROLLOUT_SOURCE,
        model_id=key.model_id,
        model_checkpoint=model_checkpoint,
        dataset=dataset,
        catalog_version=catalog_version,
        user_text=query.text,
        steps=[step],
        final_answer="",
        recommended=[],
        grounding_violations=[],
        stop_reason=ROLLOUT_STOP_REASON,
        reward=Reward(total=breakdown.total, components=breakdown.components(), source="judgments"),
        latency=Latency(
            model_ms=round(model_ms, 3),
            tool_ms=round(tool_ms, 3),
            graph_ms=0.0,
            total_ms=round(model_ms + tool_ms, 3),
        ),
        started_at=started_at or utc_now(),
        finished_at=utc_now(),
        query_id=query.id,
    )


# -- the command's entry point ----------------------------------------------------------------


def default_rollout_log(settings: Settings, dataset: str, split: str) -> Path:
    """Rollouts get their own log beside the chat's, so chat readers never scan them."""
    return settings.home / "trajectories" / f"rollouts-{dataset}-{split}.jsonl"


def collect_rollouts(
    settings: Settings,
    config: CollectConfig,
    *,
    model: str | None = None,
    log_path: Path | None = None,
    device: str = "cpu",
    threads: int | None = None,
    progress: CollectProgress | None = None,
) -> CollectSummary:
    """``shopagent collect``: the split's first ``n_queries`` requests, ``samples`` each.

    ``model`` is a stored model name or a model directory (default: ``settings.llm.model``);
    ``threads`` sets torch's CPU threads for the run (see ``rl.base_config.RunConfig``).
    """
    from agent.runtime.generation import LocalGenerator
    from agent.runtime.model_store import resolve_model_dir
    from agent.runtime.torch_threads import torch_threads
    from tools.catalog.datasets import load_dataset
    from tools.catalog.splits import select_split
    from tools.search_tools import SearchToolbox
    from tools.stores import read_manifest

    judgments = load_dataset(config.dataset, settings).judgments()
    chosen = select_split(judgments, config.dataset, config.split, config.n_queries)
    model_dir = resolve_model_dir(settings, model)
    toolbox = SearchToolbox(settings, config.dataset)
    search = LiveSearch(toolbox, size=config.k)
    if "lexical" in STRATEGIES[config.strategy].indexes:
        _ = toolbox.lexical  # a missing index fails here, before the model loads
    log = TrajectoryLog(log_path or default_rollout_log(settings, config.dataset, config.split))
    with torch_threads(threads):
        generator = LocalGenerator(model_dir, device=device)
        return collect(
            list(chosen),
            chosen,
            generator,
            search,
            log,
            config,
            model_id=model_dir.name.replace(":", "_"),
            model_checkpoint=str(model_dir),
            catalog_version=read_manifest(settings, config.dataset).get("catalog_version"),
            progress=progress,
        )
