"""Exports of a real (fake-model) chat log: jsonl, parquet, HF datasets, OpenAI chat fine-tuning."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq
import pytest

from agent.conversation.session import ChatSession
from agent.trajectory.export import (
    export_trajectories,
    openai_chat_example,
    parse_since,
    validate_chat_example,
)
from agent.trajectory.log import TrajectoryLog, default_log_path
from tests.catalog_samples import sample_products
from tests.test_agent_graph_fake_llm import FakeConceptIndex, FakeScriptedChatModel, call, say
from tools.errors import NotFound
from tools.search.tantivy_backend import TantivyIndex
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings


@pytest.fixture(scope="module")
def chat_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two turns of a fake-model chat (a search, then a question back) and a purchase."""
    settings = Settings(home=tmp_path_factory.mktemp("export") / "home")
    lexical = TantivyIndex(None, create=True)
    lexical.index(sample_products())
    toolbox = SearchToolbox(settings, "samples")
    toolbox.__dict__["lexical"] = lexical
    toolbox.__dict__["concepts"] = FakeConceptIndex(sample_products())
    model = FakeScriptedChatModel(
        script=[
            call("search_products", query="bluetooth speaker", max_price=150),
            say("The [s1] is waterproof."),
            say("Which size of room?"),
        ]
    )
    session = ChatSession.open(settings, "samples", model, toolbox=toolbox, prose="model")
    list(session.send("a bluetooth speaker under 150"))
    session.buy(1)
    list(session.send("start over"))  # nothing to search for: the graph asks, no model
    session.close()
    return default_log_path(settings.home)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_jsonl_holds_the_latest_revision_of_each_episode(chat_log: Path, tmp_path: Path) -> None:
    report = export_trajectories(chat_log, tmp_path / "out.jsonl", "jsonl")
    assert (report.exported, report.filtered_out, report.damaged_lines) == (2, 0, 0)
    first, second = lines(tmp_path / "out.jsonl")
    assert (first["turn"], first["revision"], first["reward"]["total"]) == (1, 1, 1.0)
    assert [f["kind"] for f in first["feedback"]] == ["buy"]
    assert second["stop_reason"] == "clarify"


def test_parquet_rows_are_flat_and_typed(chat_log: Path, tmp_path: Path) -> None:
    export_trajectories(chat_log, tmp_path / "out.parquet", "parquet")
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["turn"] for r in rows] == [1, 2]
    first = rows[0]
    assert first["reward"] == 1.0 and json.loads(first["reward_components"])["feedback"] == 1.0
    assert first["tool_names"] == ["search_products"] and first["recommended_ids"] == ["s1"]
    assert first["parse_classes"] == ["valid", "invalid"]  # the answer step has no tool call
    assert first["finished_at"].tzinfo is not None and first["model_ms"] >= 0
    assert json.loads(first["record"])["episode_id"] == first["episode_id"]


def test_hf_dataset_loads_with_load_from_disk(chat_log: Path, tmp_path: Path) -> None:
    export_trajectories(chat_log, tmp_path / "hf", "hf")
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    assert isinstance(loaded, datasets.Dataset) and len(loaded) == 2
    roles = [m["role"] for m in loaded[0]["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    call_ = loaded[0]["messages"][2]["tool_calls"][0]
    assert json.loads(call_["function"]["arguments"]) == {
        "query": "bluetooth speaker",
        "max_price": 150,
    }


def test_openai_chat_lines_validate_as_fine_tuning_records(chat_log: Path, tmp_path: Path) -> None:
    export_trajectories(chat_log, tmp_path / "chat.jsonl", "openai-chat")
    examples = lines(tmp_path / "chat.jsonl")
    assert len(examples) == 2
    for example in examples:
        assert validate_chat_example(example) == []
        assert {t["function"]["name"] for t in example["tools"]} == {
            "search_products",
            "search_concepts",
            "get_product",
        }
    first, second = examples
    assert first["messages"][-1] == {
        "role": "assistant",
        "content": "The [s1] is waterproof.",
        "weight": 1,
    }
    tool = first["messages"][3]
    assert (
        tool["role"] == "tool"
        and tool["tool_call_id"] == first["messages"][2]["tool_calls"][0]["id"]
    )
    # turn 2 asked back without the model: its one assistant message is the question
    weights = [m.get("weight") for m in second["messages"] if m["role"] == "assistant"]
    assert weights == [1]


def test_a_turn_that_ended_on_a_tool_round_keeps_that_round(chat_log: Path) -> None:
    record = copy.deepcopy(TrajectoryLog(chat_log).latest()[0])
    record["steps"] = record["steps"][:1]  # as if time ran out right after the search
    example = openai_chat_example(record)
    assert [m["role"] for m in example["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert validate_chat_example(example) == []


def test_a_rollout_record_teaches_the_tool_call_it_made(chat_log: Path) -> None:
    record = copy.deepcopy(TrajectoryLog(chat_log).latest()[0])
    first = record["steps"][0]
    first["output_messages"] = []  # the RL collector's one-step records carry none
    record.update(source="rollout", steps=[first], final_answer="", recommended=[])
    example = openai_chat_example(record)
    target = example["messages"][-1]
    assert [m["role"] for m in example["messages"]] == ["system", "user", "assistant"]
    assert (
        target["weight"] == 1 and target["tool_calls"][0]["function"]["name"] == "search_products"
    )
    assert (
        json.loads(target["tool_calls"][0]["function"]["arguments"])["query"] == "bluetooth speaker"
    )
    assert validate_chat_example(example) == []


def test_min_reward_and_since_filter_episodes(chat_log: Path, tmp_path: Path) -> None:
    source = TrajectoryLog(tmp_path / "mixed.jsonl")
    base = TrajectoryLog(chat_log).latest()[0]
    for n, (finished, reward) in enumerate(
        [
            ("2025-01-01T10:00:00+00:00", 0.2),
            ("2025-02-01T10:00:00+00:00", 0.9),
            ("2025-03-01T10:00:00+00:00", 1.5),
        ]
    ):
        record = copy.deepcopy(base)
        record.update(episode_id=f"c:{n}", turn=n, finished_at=finished)
        record["reward"]["total"] = reward
        source.append(record)
    report = export_trajectories(
        source.path, tmp_path / "f.jsonl", "jsonl", min_reward=0.5, since=parse_since("2025-01-15")
    )
    assert (report.exported, report.filtered_out) == (2, 1)
    assert [r["turn"] for r in lines(tmp_path / "f.jsonl")] == [1, 2]
    report = export_trajectories(source.path, tmp_path / "g.jsonl", "jsonl", min_reward=1.0)
    assert [r["turn"] for r in lines(tmp_path / "g.jsonl")] == [2]


def test_since_accepts_iso_times_and_relative_spans() -> None:
    now = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now=now) == datetime(2025, 6, 3, 12, 0, tzinfo=UTC)
    assert parse_since("90m", now=now) == datetime(2025, 6, 10, 10, 30, tzinfo=UTC)
    assert parse_since("2025-06-01T08:00") == datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="--since 'last week' is not a time"):
        parse_since("last week")


def test_the_validator_rejects_what_openai_would(chat_log: Path) -> None:
    good = openai_chat_example(TrajectoryLog(chat_log).latest()[0])
    assert validate_chat_example(good) == []
    orphan = copy.deepcopy(good)
    orphan["messages"][3]["tool_call_id"] = "nobody"
    assert "answers no earlier tool call" in validate_chat_example(orphan)[0]
    bad_args = copy.deepcopy(good)
    bad_args["messages"][2]["tool_calls"][0]["function"]["arguments"] = "{not json"
    assert any("not a JSON object" in p for p in validate_chat_example(bad_args))
    no_answer = copy.deepcopy(good)
    no_answer["messages"] = no_answer["messages"][:2]
    assert validate_chat_example(no_answer) == ["no assistant message to learn from"]
    odd_role = copy.deepcopy(good)
    odd_role["messages"][1]["role"] = "shopper"
    assert any("unknown role 'shopper'" in p for p in validate_chat_example(odd_role))
    weighted_user = copy.deepcopy(good)
    weighted_user["messages"][1]["weight"] = 1
    assert any("weight must be 0 or 1" in p for p in validate_chat_example(weighted_user))


def test_bad_requests_fail_with_one_clear_line_and_write_nothing(
    chat_log: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="unknown export format 'csv'"):
        export_trajectories(chat_log, tmp_path / "x.csv", "csv")
    with pytest.raises(NotFound, match="no trajectory log at"):
        export_trajectories(tmp_path / "missing.jsonl", tmp_path / "x.jsonl", "jsonl")
    existing = tmp_path / "exists.jsonl"
    existing.write_text("keep me\n")
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        export_trajectories(chat_log, existing, "jsonl")
    assert existing.read_text() == "keep me\n"
    assert export_trajectories(chat_log, existing, "jsonl", overwrite=True).exported == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.jsonl"]


def test_damaged_log_lines_are_counted_not_fatal(chat_log: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_bytes(chat_log.read_bytes() + b'{"crc32":"00000000","len":3,"rec')
    report = export_trajectories(damaged, tmp_path / "out.jsonl", "jsonl")
    assert (report.exported, report.damaged_lines) == (2, 1)


def test_openai_chat_never_writes_an_example_without_the_users_message(
    chat_log: Path, tmp_path: Path
) -> None:
    """A record whose prompt lost the shopper's message (a hand-edited or foreign log) would
    teach an answer to nothing: skipped and reported, never written."""
    record = copy.deepcopy(TrajectoryLog(chat_log).latest()[0])
    for step in record["steps"]:
        step["prompt_messages"] = [m for m in step["prompt_messages"] if m["role"] != "user"]
    log = tmp_path / "no-user.jsonl"
    TrajectoryLog(log).append(record)
    out = tmp_path / "chat.jsonl"
    report = export_trajectories(log, out, "openai-chat")
    assert report.exported == 0
    assert report.malformed_records == 1
    assert "no user message" in report.skipped[0].reason
    assert out.read_text(encoding="utf-8") == ""
    assert export_trajectories(log, tmp_path / "all.jsonl", "jsonl").exported == 1


def test_exports_take_any_record_the_log_holds_and_any_selection(
    chat_log: Path, tmp_path: Path
) -> None:
    """A record whose message role is not a string is skipped for parquet and hf (not a crash);
    an hf export of no episodes is an empty dataset; a NaN reward floor and a huge span are
    one-line answers, never a traceback."""
    good = TrajectoryLog(chat_log).latest()
    odd = copy.deepcopy(good[0])
    odd["episode_id"] = "odd"
    odd["steps"][-1]["prompt_messages"][0]["role"] = 7
    log = tmp_path / "odd.jsonl"
    for record in [*good, odd]:
        TrajectoryLog(log).append(record)
    for fmt, out in (("parquet", tmp_path / "x.parquet"), ("hf", tmp_path / "hf")):
        report = export_trajectories(log, out, fmt)
        assert (report.exported, report.malformed_records) == (len(good), 1), fmt
    empty = export_trajectories(log, tmp_path / "empty-hf", "hf", min_reward=1e9)
    assert empty.exported == 0
    assert len(datasets.load_from_disk(str(tmp_path / "empty-hf"))) == 0
    with pytest.raises(ValueError, match="--min-reward must be a finite number"):
        export_trajectories(log, tmp_path / "nan.jsonl", "jsonl", min_reward=float("nan"))
    assert parse_since("99999999d") == datetime.min.replace(tzinfo=UTC)
