"""From a small trajectory file to TRL datasets; collecting rollouts into it, with resuming."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from trl.data_utils import is_conversational

from agent.protocol.tool_calls import parse_tool_calls
from agent.runtime.generation import Generation
from agent.trajectory.log import TrajectoryLog
from rl.datasets import (
    build_dpo_dataset,
    build_grpo_dataset,
    build_kto_dataset,
    build_rwr_dataset,
    read_rollouts,
)
from rl.rewards import LiveSearch
from rl.rollouts import CollectConfig, RolloutKey, collect, logged_samples
from rl.rwr_trainer import replicate_by_weight
from tests.catalog_samples import sample_products
from tests.rl_samples import MODEL, PROSE, repaired, rollout, valid, write_log
from tools.catalog.judgments import Judgments, Query
from tools.search.tantivy_backend import TantivyIndex
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings

TILE = Query.from_text("porcelain tile")
PLIERS = Query.from_text("mini pliers")
OIL = Query.from_text("fuel oil")


@pytest.fixture()
def trajectory_file(tmp_path: Path) -> Path:
    """Three requests of one policy, one of another, a chat episode and a torn last line."""
    records = [
        rollout(TILE, 0, valid("porcelain tile"), 0.5),  # 0.6
        rollout(TILE, 1, PROSE, 0.0),  # -1.0
        rollout(TILE, 2, valid("tile"), 0.0),  # 0.0
        rollout(TILE, 3, repaired("porcelain floor tile"), 0.8),  # 0.8
        *(rollout(PLIERS, i, valid("mini pliers"), 1.0) for i in range(4)),  # 1.1 each
        rollout(OIL, 0, PROSE, 0.0),
        rollout(OIL, 1, PROSE, 0.0),
        rollout(OIL, 2, valid("fuel oil"), 0.3),  # 0.4
        rollout(OIL, 3, PROSE, 0.0),
        rollout(TILE, 0, valid("tiles"), 0.2, model_id="dpo-round1"),
    ]
    chat = rollout(TILE, 0, valid("tile"), 0.1)
    chat.source, chat.conversation_id = "chat", "chat-1"
    path = write_log(tmp_path / "rollouts.jsonl", [*records, chat])
    with path.open("ab") as handle:  # a collector killed mid-write
        handle.write(b'{"crc32":"00000000","len":99,"record":{"conversation_id":"rol')
    return path


def by_query(rows: Any) -> dict[str, dict[str, Any]]:
    return {row["query_id"]: row for row in rows}


def test_read_rollouts_groups_by_policy_and_request(trajectory_file: Path) -> None:
    data = read_rollouts(trajectory_file)
    assert data.damaged == 1
    assert data.records == 13 and data.skipped == 0  # the chat episode is not a rollout
    assert len(data.groups) == 4
    mine = read_rollouts(trajectory_file, model_id=MODEL)
    assert [g.key.query_id for g in mine.groups] == [TILE.id, PLIERS.id, OIL.id]
    assert mine.skipped == 1
    tile = mine.groups[0]
    assert tile.rewards == [0.6, -1.0, 0.0, 0.8]
    assert [r.parse_class for r in tile.rollouts] == ["valid", "invalid", "valid", "repaired"]
    assert tile.messages[-1] == {"role": "user", "content": "porcelain tile"}
    assert read_rollouts(trajectory_file, dataset="chorus").groups == []


def test_dpo_pairs_the_best_against_the_worst_above_the_margin(trajectory_file: Path) -> None:
    groups = read_rollouts(trajectory_file, model_id=MODEL).groups
    pairs = by_query(build_dpo_dataset(groups, margin=0.1))
    assert set(pairs) == {TILE.id, OIL.id}  # the pliers group has no spread
    tile = pairs[TILE.id]
    assert tile["chosen"] == [{"role": "assistant", "content": repaired("porcelain floor tile")}]
    assert tile["rejected"] == [{"role": "assistant", "content": PROSE}]
    assert (tile["chosen_reward"], tile["rejected_reward"]) == (0.8, -1.0)
    assert pairs[OIL.id]["chosen"][0]["content"] == valid("fuel oil")
    assert [row["query_id"] for row in build_dpo_dataset(groups, margin=1.5)] == [TILE.id]
    empty = build_dpo_dataset(groups, margin=5.0)
    assert len(empty) == 0 and "chosen" in empty.column_names


def test_dpo_ties_reject_the_greedy_reply(tmp_path: Path) -> None:
    path = write_log(
        tmp_path / "ties.jsonl",
        [
            rollout(TILE, 0, PROSE, 0.0),
            rollout(TILE, 1, "Sorry, I cannot help.", 0.0),
            rollout(TILE, 2, valid("tile"), 0.5),
            rollout(TILE, 3, valid("floor tile"), 0.5),
        ],
    )
    pair = build_dpo_dataset(read_rollouts(path).groups)[0]
    assert pair["rejected"][0]["content"] == PROSE  # sample 0, the greedy one
    assert pair["chosen"][0]["content"] == valid("tile")


def test_datasets_are_in_trl_conversational_format(trajectory_file: Path) -> None:
    groups = read_rollouts(trajectory_file, model_id=MODEL).groups
    for dataset in (
        build_dpo_dataset(groups),
        build_kto_dataset(groups),
        build_rwr_dataset(groups),
    ):
        row = dataset[0]
        assert is_conversational(row)
        assert row["prompt"][0]["role"] == "system"
        tools = json.loads(row["tools"])
        assert [t["function"]["name"] for t in tools] == ["search_products"]


def test_kto_labels_come_from_group_normalised_advantages(trajectory_file: Path) -> None:
    groups = read_rollouts(trajectory_file, model_id=MODEL).groups
    rows = build_kto_dataset(groups, threshold=0.5)
    labelled = [(row["query_id"], row["reward"], row["label"]) for row in rows]
    # porcelain tile: rewards 0.6, -1, 0, 0.8 -> mean 0.1, std 0.7 -> advantages .71, -1.57, -.14, 1
    assert [(r, label) for q, r, label in labelled if q == TILE.id] == [
        (0.6, True),
        (-1.0, False),
        (0.8, True),
    ]
    # fuel oil: one usable call among three failures
    assert sorted(label for q, _, label in labelled if q == OIL.id) == [False, False, False, True]
    assert all(q != PLIERS.id for q, _, _ in labelled)  # no spread, no signal
    advantages = dict(zip(rows["reward"], rows["advantage"], strict=False))
    assert advantages[0.8] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="threshold"):
        build_kto_dataset(groups, threshold=0)


def test_rwr_weights_good_samples_by_advantage_and_replicates(trajectory_file: Path) -> None:
    groups = read_rollouts(trajectory_file, model_id=MODEL).groups
    weighted = build_rwr_dataset(groups, beta=1.0, min_reward=0.0, max_weight=4.0)
    assert all(reward > 0 for reward in weighted["reward"])
    weights = {
        (row["query_id"], row["completion"][0]["content"]): row["weight"] for row in weighted
    }
    assert weights[(TILE.id, valid("porcelain tile"))] == pytest.approx(2.0423, abs=1e-3)
    assert weights[(TILE.id, repaired("porcelain floor tile"))] == pytest.approx(2.7183, abs=1e-3)
    assert weights[(OIL.id, valid("fuel oil"))] == 4.0  # e^1.73, capped
    # pliers: all four samples scored the same, so the group teaches nothing and is left out
    assert PLIERS.id not in weighted["query_id"]
    replicated = replicate_by_weight(weighted, seed=0)
    assert len(replicated) == 2 + 3 + 4
    assert sorted(replicated["query_id"]) == sorted([TILE.id] * 5 + [OIL.id] * 4)


def test_grpo_prompts_carry_the_judged_gains(trajectory_file: Path) -> None:
    groups = read_rollouts(trajectory_file).groups
    judgments = Judgments()
    judgments.add(TILE, "t1", 1)
    judgments.add(TILE, "t2", 0)
    judgments.add(PLIERS, "p1", 1)
    judgments.add(OIL, "o1", 0)  # nothing relevant: cannot be rewarded
    rows = build_grpo_dataset(groups, judgments)
    assert rows["query_id"] == [TILE.id]  # pliers: no spread; oil: no positive judgment
    assert json.loads(rows[0]["judged"]) == {"t1": 1, "t2": 0}
    every = build_grpo_dataset(groups, judgments, only_informative=False)
    assert every["query_id"] == [TILE.id, PLIERS.id]  # one prompt per request, not per model


# -- collecting ---------------------------------------------------------------------------------


class FakeGenerator:
    """Greedy replies copy the request; sampled ones alternate between prose and a longer query.

    ``fail_after`` raises on that call, like a collector killed mid-run.
    """

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls: list[tuple[int, float]] = []
        self.fail_after = fail_after

    def generate(
        self,
        conversations: Sequence[Sequence[Mapping[str, Any]]],
        *,
        tools: Any = None,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> list[Generation]:
        if self.fail_after is not None and len(self.calls) == self.fail_after:
            raise KeyboardInterrupt
        self.calls.append((len(conversations), temperature))
        replies = []
        for position, conversation in enumerate(conversations):
            request = str(conversation[-1]["content"])
            if temperature == 0:
                text = valid(request)
            else:
                text = PROSE if position % 2 else valid(f"{request} wireless")
            parsed = parse_tool_calls(text, tools)
            replies.append(Generation(text, parsed, 100, (1,)))
        return replies


def test_collect_scores_logs_and_resumes_fake_generator(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", lexical_backend="tantivy")
    TantivyIndex(settings.tantivy_dir("sample"), create=True).index(sample_products())
    queries = [Query.from_text(t) for t in ("gaming mouse", "mechanical keyboard", "toner")]
    judgments = Judgments()
    for query, relevant in zip(queries, (("m1", "m2"), ("k1",), ("p1",)), strict=True):
        for product_id in relevant:
            judgments.add(query, product_id, 1)
    search = LiveSearch(SearchToolbox(settings, "sample"))
    log = TrajectoryLog(tmp_path / "rollouts.jsonl")
    config = CollectConfig(dataset="sample", samples=3, batch_size=4, temperature=0.8)
    seen: list[tuple[int, int]] = []

    def run(generator: FakeGenerator) -> Any:
        return collect(
            queries,
            judgments,
            generator,
            search,
            log,
            config,
            model_id=MODEL,
            progress=lambda done, total: seen.append((done, total)),
        )

    interrupted = FakeGenerator(fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        run(interrupted)
    # the first batch (4 samples: greedy 0 and 3 in one call, samples 1-2 in another) is safe
    assert len(logged_samples(log, MODEL, "policy")) == 4
    resumed = run(FakeGenerator())
    assert (resumed.skipped, resumed.written, resumed.planned) == (4, 5, 9)
    assert seen[-1] == (9, 9)
    assert logged_samples(log, MODEL, "policy") == {(q.id, i) for q in queries for i in range(3)}
    assert run(FakeGenerator()).written == 0  # a finished collect is a no-op

    records = log.read().records
    assert len(records) == 9 and all(r["source"] == "rollout" for r in records)
    greedy_mouse = next(r for r in records if r["query_id"] == queries[0].id and r["turn"] == 0)
    assert RolloutKey.parse(greedy_mouse["conversation_id"]) == RolloutKey(
        MODEL, "policy", queries[0].id
    )
    # the gain reward: copying the query is the raw search (the two gaming mice on top, NDCG 1),
    # so it earns the format part only
    assert greedy_mouse["reward"]["total"] == pytest.approx(0.1)
    components = greedy_mouse["reward"]["components"]
    assert components["raw_ndcg@10"] == pytest.approx(1.0)
    assert components["gain@10"] == 0.0
    call = greedy_mouse["steps"][0]["tool_calls"][0]
    assert {hit["product_id"] for hit in call["attempts"][0]["hits"][:2]} == {"m1", "m2"}
    assert call["ndcg_at_10"] == pytest.approx(1.0)
    prose = [r for r in records if r["steps"][0]["parse_class"] == "invalid"]
    assert prose and all(r["reward"]["total"] == -1.0 for r in prose)
    assert all(r["steps"][0]["decision"] == "answer" for r in prose)
    assert {temperature for _, temperature in interrupted.calls} == {0.0, 0.8}
    data = read_rollouts(log.path)
    assert [len(g.rollouts) for g in data.groups] == [3, 3, 3]


def test_collect_config_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="unknown rollout strategy 'direct'"):
        CollectConfig(strategy="direct")
    with pytest.raises(ValueError, match="samples must be at least 1"):
        CollectConfig(samples=0)
