"""Issue 15, item 7: ``shopagent export`` over a log holding records of the wrong shape (valid
checksum, not an episode) and damaged lines: every format skips them and names their lines,
and every good episode is written."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from agent.trajectory.log import TrajectoryLog, encode_line
from tests.hostile_helpers import shopagent
from tests.test_trajectory_log import episode

GOOD = ("conv:1", "conv:4")


@pytest.fixture(scope="module")
def hostile_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile-export") / "trajectories.jsonl"
    log = TrajectoryLog(path)
    log.append(episode(1))  # line 1
    wrong_reward = episode(2).to_dict()
    wrong_reward["reward"] = {"total": "lots"}
    no_steps = episode(3).to_dict()
    del no_steps["steps"]
    bad_step = episode(5).to_dict()
    bad_step["steps"] = [{"prompt_messages": "not a list"}]
    with path.open("ab") as handle:
        handle.write(encode_line({"hello": "world"}))  # line 2: checksum fine, not an episode
        handle.write(encode_line(wrong_reward))  # line 3
        handle.write(b'{"crc32":"00000000","len":5,"record":{}}\n')  # line 4: damaged
        handle.write(encode_line(no_steps))  # line 5
    log.append(episode(4))  # line 6
    with path.open("ab") as handle:
        handle.write(encode_line(bad_step))  # line 7
    return path


def exported_ids(out: Path, fmt: str) -> list[str]:
    if fmt == "jsonl":
        return [json.loads(line)["episode_id"] for line in out.read_text().splitlines()]
    if fmt == "parquet":
        return list(pq.read_table(out).column("episode_id").to_pylist())
    if fmt == "hf":
        import datasets

        return list(datasets.load_from_disk(str(out))["episode_id"])
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(line["messages"][-1]["role"] == "assistant" for line in lines)
    return ["?"] * len(lines)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "hf", "openai-chat"])
def test_wrong_shape_records_are_skipped_and_named_by_line_in_every_format(
    hostile_log: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"out.{fmt}"
    result = shopagent(
        tmp_path / "home", "export", str(out), "--format", fmt, "--log", str(hostile_log)
    )
    stdout = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()
    assert "2 episodes" in stdout
    assert "1 damaged lines and 4 malformed records skipped" in stdout
    for line in (2, 3, 5, 7):
        assert f"skipped line {line}: not an episode record" in stdout, stdout
    assert "skipped line 4: checksum mismatch" in stdout or "skipped line 4:" in stdout
    ids = exported_ids(out, fmt)
    assert len(ids) == 2 and (fmt == "openai-chat" or tuple(ids) == GOOD)


def test_the_missing_log_hint_names_an_option_that_exists(tmp_path: Path) -> None:
    result = shopagent(tmp_path / "home", "export", str(tmp_path / "out.jsonl"))
    assert result.returncode == 1
    (line,) = result.stderr.decode().strip().splitlines()
    assert "no trajectory log at" in line and "--log PATH" in line
    help_text = shopagent(tmp_path / "home", "export", "--help").stdout.decode()
    assert "--log" in help_text
