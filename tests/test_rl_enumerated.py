"""Enumerated expand rollouts (``rl.enumerated``) on a real tiny tantivy index: every call of
the expand action written as the model would write it, scored through the one tool-call path,
logged in the shape ``shopagent collect`` writes and turned into DPO pairs unchanged; plus the
DPO ``chosen_margin`` and the training time limit."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent.protocol.chat_template import tool_call_text
from agent.protocol.tool_calls import ParseClass, parse_tool_calls
from agent.protocol.tool_schemas import SEARCH_PRODUCTS, schema_for
from agent.protocol.writer_prompts import EXPAND_EXAMPLE, strategy_prompt
from rl.base_trainer import TimeLimit
from rl.datasets import Rollout, RolloutGroup, build_dpo_dataset, read_rollouts
from rl.enumerated import (
    ENUMERATED_MODEL_ID,
    CandidateCall,
    collect_enumerated,
    expand_candidate_calls,
)
from rl.rewards import FORMAT_VALID, LiveSearch, RawBaseline
from rl.rollouts import CollectConfig, RolloutKey
from tests.catalog_samples import sample_toolbox
from tools.catalog.judgments import Judgments, Query
from tools.errors import BadInput
from tools.search_tools import SearchToolbox

TOOLS = [schema_for(SEARCH_PRODUCTS)]


@pytest.fixture()
def toolbox(tmp_path: Path) -> SearchToolbox:
    return sample_toolbox(tmp_path / "home", concepts=True)


def test_a_call_is_written_exactly_as_the_worked_example_writes_it() -> None:
    example = json.loads(EXPAND_EXAMPLE[1]["content"][len("<tool_call>") : -len("</tool_call>")])
    assert tool_call_text(example["name"], example["arguments"]) == EXPAND_EXAMPLE[1]["content"]
    # non-ASCII is written as the model writes it, and still parses as the taught format
    text = tool_call_text(SEARCH_PRODUCTS, {"query": "café table"})
    assert "café" in text
    assert parse_tool_calls(text, TOOLS).parse_class == ParseClass.VALID


def test_the_expand_action_is_enumerated_copy_first() -> None:
    calls = expand_candidate_calls("wireless mouse", ["logitech", "gaming", "rgb", "usb", "gaming"])
    labels = [c.label for c in calls]
    assert labels[0] == "copy" and calls[0].arguments == {"query": "wireless mouse"}
    # each distinct candidate once, then pairs of the top three
    assert labels[1:5] == ["add:logitech", "add:gaming", "add:rgb", "add:usb"]
    assert labels[5:] == ["add:logitech+gaming", "add:logitech+rgb", "add:gaming+rgb"]
    for call in calls:
        parsed = parse_tool_calls(call.text(), TOOLS)
        assert parsed.parse_class == ParseClass.VALID
        assert parsed.calls[0].arguments == call.arguments
    two = expand_candidate_calls("mouse", ["a", "b"])
    assert [c.label for c in two] == ["copy", "add:a", "add:b", "add:a+b"]
    assert expand_candidate_calls("mouse", []) == [CandidateCall("copy", {"query": "mouse"})]


def test_enumerated_collect_scores_every_call_and_trains_unchanged(
    toolbox: SearchToolbox, tmp_path: Path
) -> None:
    from agent.trajectory.log import TrajectoryLog

    judgments = Judgments()
    typo = Query.from_text("wireles mouse")
    judgments.add(typo, "m3", 2)  # the raw words rank a gaming mouse first
    nothing_helps = Query.from_text("logitech mouse")
    judgments.add(nothing_helps, "m3", 2)  # already first for the raw words
    queries = [typo, nothing_helps]
    log = TrajectoryLog(tmp_path / "enum.jsonl")
    config = CollectConfig(dataset="samples", strategy="expand", candidates="enumerate")
    index = toolbox.lexical
    dense = toolbox.concepts
    summary = collect_enumerated(
        queries, judgments, index, LiveSearch(toolbox), log, config, dense=dense
    )
    assert summary.written == summary.planned > 2 * 2
    assert summary.parse_classes == {"valid": summary.written}

    data = read_rollouts(log.path)
    assert {g.key.model_id for g in data.groups} == {ENUMERATED_MODEL_ID}
    by_query = {g.key.query_id: g for g in data.groups}
    group = by_query[typo.id]
    # the prompt is exactly the expand prompt the eval and a sampled collect show
    expected = strategy_prompt("expand", typo.text, toolbox)
    assert list(group.messages) == [dict(m) for m in expected.messages]
    # copy is sample 0: the request as the prompt shows it, respelled by the search system
    # (the typo fixed), so it earns the respelling's gain over the shopper's own words
    assert group.rollouts[0].completion == copy_of("wireless mouse")
    raw = RawBaseline(toolbox)(typo.text, judgments.gains(typo.id))
    assert 0 < raw < 1
    assert group.rollouts[0].ndcg == 1.0
    assert group.rollouts[0].reward == pytest.approx(FORMAT_VALID + 1.0 - raw)
    # where the respelling changes nothing, copy is the raw search: the gain's zero point
    assert by_query[nothing_helps.id].rollouts[0].completion == copy_of(nothing_helps.text)
    assert by_query[nothing_helps.id].rollouts[0].reward == FORMAT_VALID

    pairs = build_dpo_dataset(data.groups, margin=0.05)
    chosen = {row["query_id"]: row["chosen"][0]["content"] for row in pairs}
    # nothing beats the copy here: no pair, or copy chosen (it wins every tie)
    for query, copied in ((typo, "wireless mouse"), (nothing_helps, nothing_helps.text)):
        assert chosen.get(query.id, copy_of(copied)) == copy_of(copied)
    assert max(by_query[nothing_helps.id].rewards) == FORMAT_VALID

    # resuming writes nothing new
    again = collect_enumerated(
        queries, judgments, index, LiveSearch(toolbox), log, config, dense=dense
    )
    assert again.written == 0 and again.skipped == summary.written


def copy_of(text: str) -> str:
    return tool_call_text(SEARCH_PRODUCTS, {"query": text})


def test_enumerate_is_for_the_expand_strategy_only() -> None:
    with pytest.raises(BadInput, match="expand"):
        CollectConfig(strategy="policy", candidates="enumerate")
    with pytest.raises(BadInput, match="candidates"):
        CollectConfig(strategy="expand", candidates="guess")


def _group(rewards: list[float]) -> RolloutGroup:
    group = RolloutGroup(RolloutKey("m", "expand", "q1"), "d", "mouse", ({"role": "user"},))
    group.rollouts = [Rollout(i, f"reply {i}", "valid", r, 0.0) for i, r in enumerate(rewards)]
    return group


def test_chosen_margin_keeps_the_first_sample_unless_beaten_clearly() -> None:
    small_win = _group([0.1, 0.13, -0.4])
    plain = build_dpo_dataset([small_win], margin=0.1)
    assert plain[0]["chosen"][0]["content"] == "reply 1"
    careful = build_dpo_dataset([small_win], margin=0.1, chosen_margin=0.1)
    assert careful[0]["chosen"][0]["content"] == "reply 0"
    assert careful[0]["rejected"][0]["content"] == "reply 2"
    clear_win = build_dpo_dataset([_group([0.1, 0.5, -0.4])], margin=0.1, chosen_margin=0.1)
    assert clear_win[0]["chosen"][0]["content"] == "reply 1"
    # the first sample is the worst and nothing beats it clearly: no pair
    assert len(build_dpo_dataset([_group([0.1, 0.15])], margin=0.01, chosen_margin=0.1)) == 0
    with pytest.raises(BadInput):
        build_dpo_dataset([small_win], chosen_margin=-1)


def test_time_limit_stops_training_after_the_step_that_passes_it() -> None:
    limit = TimeLimit(0.0)
    control = SimpleNamespace(should_training_stop=False)
    limit.on_train_begin(None, None, control)
    limit.on_step_end(None, SimpleNamespace(global_step=3, max_steps=10), control)
    assert control.should_training_stop and limit.stopped_early
    relaxed = TimeLimit(3600.0)
    control = SimpleNamespace(should_training_stop=False)
    relaxed.on_train_begin(None, None, control)
    relaxed.on_step_end(None, SimpleNamespace(global_step=3, max_steps=10), control)
    assert not control.should_training_stop and not relaxed.stopped_early
