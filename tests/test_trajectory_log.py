"""The trajectory log survives crashes: real SIGKILLs, torn tails, flipped bits, zeroed blocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.trajectory.log import (
    EpisodeRecord,
    Feedback,
    HitRecord,
    Latency,
    ModelStep,
    Reward,
    ToolAttempt,
    ToolCallRecord,
    TrajectoryLog,
    encode_line,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def episode(turn: int = 1, *, source: str = "chat", revision: int = 0) -> EpisodeRecord:
    call = ToolCallRecord(
        call_id="c1",
        name="search_products",
        arguments={"query": "mouse", "max_price": 50},
        attempts=[
            ToolAttempt("search_products", {"query": "mouse"}, ok=False, error="down", tool_ms=1.5),
            ToolAttempt(
                "search_concepts",
                {"text": "mouse"},
                ok=True,
                hits=[HitRecord("m1", 1, 0.9), HitRecord("m2", 2, 0.5)],
                tool_ms=3.0,
            ),
        ],
        ndcg_at_10=0.75,
    )
    step = ModelStep(
        prompt_messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "mouse"}],
        raw_output='<tool_call>{"name": "search_products"}</tool_call>',
        raw_tool_calls=[],
        parsed_calls=[{"id": "c1", "name": "search_products", "arguments": {"query": "mouse"}}],
        parse_class="repaired",
        parse_source="text",
        problems=["tool call JSON repaired"],
        decision="tool_calls",
        model_ms=12.0,
        tool_calls=[call],
    )
    return EpisodeRecord(
        conversation_id="conv",
        turn=turn,
        source=source,
        model_id="smollm2-135m",
        model_checkpoint=None,
        dataset="samples",
        catalog_version="20250101T000000.000000Z",
        user_text="mouse",
        steps=[step],
        final_answer="Try [m1].",
        recommended=[{"position": 1, "id": "m1", "title": "Mouse", "brand": "L", "price": "9.99"}],
        grounding_violations=[],
        stop_reason="answered",
        reward=Reward(0.75, {"ndcg@10": 0.75}, "judgments"),
        latency=Latency(model_ms=12.0, tool_ms=4.5, graph_ms=1.0, total_ms=17.5),
        started_at="2025-01-01T00:00:00.000+00:00",
        finished_at="2025-01-01T00:00:01.000+00:00",
        feedback=[Feedback("like", "m1", 1, "2025-01-01T00:00:02.000+00:00")],
        revision=revision,
    )


def test_records_round_trip_exactly_and_latest_revision_wins(tmp_path: Path) -> None:
    log = TrajectoryLog(tmp_path / "t" / "trajectories.jsonl")
    first, rollout = episode(1), episode(2, source="rollout")
    log.append(first)
    log.append(rollout)
    log.append(episode(1, revision=1))
    contents = log.read()
    assert contents.damaged == [] and len(contents.records) == 3
    assert EpisodeRecord.from_dict(contents.records[0]) == first
    assert EpisodeRecord.from_dict(contents.records[1]).source == "rollout"
    assert [(r["episode_id"], r["revision"]) for r in log.latest()] == [
        ("conv:1", 1),
        ("conv:2", 0),
    ]
    assert log.find("conv:1")["revision"] == 1 and log.find("conv:9") is None
    assert first.steps[0].tool_calls[0].hits == [HitRecord("m1", 1, 0.9), HitRecord("m2", 2, 0.5)]


def test_an_unknown_source_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown episode source 'web'"):
        episode(source="web")


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_a_fresh_line(
    tmp_path: Path,
) -> None:
    log = TrajectoryLog(tmp_path / "trajectories.jsonl")
    log.append({"episode_id": "a", "n": 1})
    torn = encode_line({"episode_id": "b", "n": 2})
    with log.path.open("ab") as handle:
        handle.write(torn[: len(torn) // 2])  # what a kill mid-write leaves
    log.append({"episode_id": "c", "n": 3})
    contents = log.read()
    assert [r["n"] for r in contents.records] == [1, 3]
    assert [d.line_number for d in contents.damaged] == [2]


def test_a_flipped_bit_costs_exactly_one_record(tmp_path: Path) -> None:
    log = TrajectoryLog(tmp_path / "trajectories.jsonl")
    for n in range(3):
        log.append({"episode_id": str(n), "text": "abcdef"})
    data = bytearray(log.path.read_bytes())
    second_line = data.index(b"\n") + 1
    data[data.index(b"abcdef", second_line)] ^= 0x01  # 'a' -> '`': still valid JSON
    log.path.write_bytes(bytes(data))
    contents = log.read()
    assert [r["episode_id"] for r in contents.records] == ["0", "2"]
    assert [(d.line_number, d.reason) for d in contents.damaged] == [(2, "checksum mismatch")]


def test_a_zero_filled_tail_after_a_power_cut_is_reported_not_fatal(tmp_path: Path) -> None:
    log = TrajectoryLog(tmp_path / "trajectories.jsonl")
    log.append({"episode_id": "a"})
    with log.path.open("ab") as handle:
        handle.write(b"\0" * 4096)
    log.append({"episode_id": "b"})
    contents = log.read()
    assert [r["episode_id"] for r in contents.records] == ["a", "b"]
    assert len(contents.damaged) == 1


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from agent.trajectory.log import TrajectoryLog

    log = TrajectoryLog(Path(sys.argv[1]))
    name = sys.argv[2]
    for seq in range(1_000_000):
        # sizes from tiny to 256 KB so that a kill can land inside a write
        payload = "x" * (1 << (seq % 19))
        log.append({"episode_id": f"{name}:{seq}", "writer": name, "seq": seq, "payload": payload})
        print(seq, flush=True)  # append returned: this record must survive anything now
    """
)


def start_writer(path: Path, name: str, *, report: bool) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), name],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE if report else subprocess.DEVNULL,
    )


def test_sigkill_mid_append_loses_at_most_the_record_being_written(tmp_path: Path) -> None:
    """Real processes append at once; victims are SIGKILLed mid-loop while a survivor goes on.

    Every record a writer reported as appended must read back; each kill may tear at most
    the one record it interrupted, and appends after a kill start clean lines.
    """
    log = TrajectoryLog(tmp_path / "trajectories.jsonl")
    survivor = start_writer(log.path, "survivor", report=False)
    acknowledged: dict[str, int] = {}
    try:
        for round_number in range(3):
            name = f"victim{round_number}"
            victim = start_writer(log.path, name, report=True)
            assert victim.stdout is not None
            for _ in range(30 + 7 * round_number):  # let it get well into its loop
                acknowledged[name] = int(victim.stdout.readline())
            victim.send_signal(signal.SIGKILL)
            assert victim.wait(timeout=10) == -signal.SIGKILL
            for line in victim.stdout.read().split():  # acknowledged before the kill landed
                acknowledged[name] = int(line)
    finally:
        survivor.send_signal(signal.SIGKILL)
        survivor.wait(timeout=10)
    log.append({"episode_id": "after", "writer": "after", "seq": 0})

    contents = log.read()
    by_writer: dict[str, list[int]] = {}
    for record in contents.records:
        by_writer.setdefault(record["writer"], []).append(record["seq"])
    for name, seqs in by_writer.items():
        assert seqs == list(range(len(seqs))), f"{name} lost a record before its last"
    for name, last in acknowledged.items():
        assert by_writer[name][-1] >= last, f"{name}: an acknowledged append was lost"
    assert by_writer["after"] == [0] and len(by_writer["survivor"]) > 0
    assert len(contents.damaged) <= 4  # four kills, at most one torn record each
    assert all("torn" in d.reason or "envelope" in d.reason for d in contents.damaged)


STALLED_WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import agent.trajectory.log as trajectory

    def write_half_then_stall(fd, data):
        os.write(fd, data[: len(data) // 2])
        print("half written", flush=True)
        time.sleep(60)  # SIGKILL lands here, in the middle of the record, lock held

    log = trajectory.TrajectoryLog(Path(sys.argv[1]))
    for seq in range(3):
        log.append({"episode_id": f"stalled:{seq}", "writer": "stalled", "seq": seq})
    trajectory._write_all = write_half_then_stall
    log.append({"episode_id": "stalled:3", "writer": "stalled", "seq": 3, "pad": "x" * 5000})
    """
)


def test_sigkill_inside_a_write_tears_only_that_record(tmp_path: Path) -> None:
    """The kill is made to land mid-record (half the bytes written, the lock held)."""
    log = TrajectoryLog(tmp_path / "trajectories.jsonl")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    stalled = subprocess.Popen(
        [sys.executable, "-c", STALLED_WRITER, str(log.path)],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
    )
    assert stalled.stdout is not None
    assert stalled.stdout.readline().strip() == b"half written"
    stalled.send_signal(signal.SIGKILL)
    assert stalled.wait(timeout=10) == -signal.SIGKILL
    log.append({"episode_id": "after", "writer": "after", "seq": 0})  # the lock died with it

    contents = log.read()
    assert [(r["writer"], r["seq"]) for r in contents.records] == [
        ("stalled", 0),
        ("stalled", 1),
        ("stalled", 2),
        ("after", 0),
    ]
    assert [d.line_number for d in contents.damaged] == [4]
    assert "torn" in contents.damaged[0].reason or "envelope" in contents.damaged[0].reason
