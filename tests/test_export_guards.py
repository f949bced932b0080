"""``shopagent export`` never destroys what it reads, never replaces shopagent's own data, and
never reads without bound. Through the real command, on a real (fake-model) chat log."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from agent.trajectory.log import TrajectoryLog
from tests.test_cli_search import shopagent
from tests.test_export import chat_log  # noqa: F401  (the module fixture: a real chat log)
from tools.user_files import bounded_lines


@pytest.fixture()
def home_with_log(chat_log: Path, tmp_path: Path) -> tuple[Path, Path]:  # noqa: F811
    home = tmp_path / "home"
    log = home / "trajectories" / "log.jsonl"
    log.parent.mkdir(parents=True)
    shutil.copyfile(chat_log, log)
    return home, log


def records(log: Path) -> int:
    return len(TrajectoryLog(log).read().records)


def test_exporting_over_the_log_itself_is_refused_and_the_log_kept(
    home_with_log: tuple[Path, Path],
) -> None:
    home, log = home_with_log
    before = log.read_bytes()
    spellings = [str(log), str(log.parent / ".." / log.parent.name / log.name)]
    link = home / "link.jsonl"
    link.symlink_to(log)
    spellings.append(str(link))
    for spelling in spellings:
        result = shopagent(home, "export", spelling, "--log", str(log), "--overwrite")
        assert result.returncode == 1, result.stdout
        assert "is the trajectory log being exported" in result.stderr
        assert "unexpected" not in result.stderr
    assert log.read_bytes() == before
    assert records(log) > 0


def test_an_hf_export_over_a_folder_holding_the_log_is_refused(
    home_with_log: tuple[Path, Path],
) -> None:
    home, log = home_with_log
    result = shopagent(
        home, "export", str(log.parent), "--log", str(log), "--format", "hf", "--overwrite"
    )
    assert result.returncode == 1
    assert "holds the trajectory log" in result.stderr
    assert log.exists() and records(log) > 0


def test_an_export_never_replaces_a_dataset_or_an_unrelated_folder(
    home_with_log: tuple[Path, Path], tmp_path: Path
) -> None:
    home, log = home_with_log
    dataset = home / "datasets" / "shop"
    dataset.mkdir(parents=True)
    (dataset / "catalog.jsonl").write_text('{"id": "1"}\n')
    into_dataset = shopagent(
        home, "export", str(dataset / "catalog.jsonl"), "--log", str(log), "--overwrite"
    )
    assert into_dataset.returncode == 1
    assert "is shopagent's own data" in into_dataset.stderr
    assert (dataset / "catalog.jsonl").read_text() == '{"id": "1"}\n'

    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"\xff\xd8")
    over_folder = shopagent(
        home, "export", str(photos), "--log", str(log), "--format", "hf", "--overwrite"
    )
    assert over_folder.returncode == 1
    assert "not an earlier hf export" in over_folder.stderr
    assert (photos / "cat.jpg").read_bytes() == b"\xff\xd8"

    # An earlier hf export is what --overwrite is for: replaced.
    first = shopagent(home, "export", str(tmp_path / "hf"), "--log", str(log), "--format", "hf")
    assert first.returncode == 0, first.stderr
    again = shopagent(
        home, "export", str(tmp_path / "hf"), "--log", str(log), "--format", "hf", "--overwrite"
    )
    assert again.returncode == 0, again.stderr


def test_a_device_or_pipe_as_the_log_is_one_line_not_an_endless_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = shopagent(home, "export", str(tmp_path / "out.jsonl"), "--log", "/dev/zero")
    assert result.returncode == 1
    assert "is not a regular file" in result.stderr
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    piped = shopagent(home, "export", str(tmp_path / "out.jsonl"), "--log", str(fifo))
    assert piped.returncode == 1
    assert "is not a regular file" in piped.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_an_over_long_line_costs_one_damaged_line_not_the_memory(
    home_with_log: tuple[Path, Path], tmp_path: Path
) -> None:
    home, log = home_with_log
    good = records(log)
    cap = max(len(line) for line in log.read_bytes().splitlines(keepends=True))
    with log.open("ab") as handle:
        handle.write(b"x" * (cap * 4) + b"\n")
    contents = TrajectoryLog(log).read()
    assert len(contents.records) == good  # a short garbage line is damaged as before
    with log.open("rb") as handle:
        lines = list(bounded_lines(handle, max_bytes=cap))
    assert lines[-1] == (len(lines), None)  # over the cap: reported, bytes never held
    assert all(line is not None for _, line in lines[:-1])
    result = shopagent(home, "export", str(tmp_path / "out.jsonl"), "--log", str(log))
    assert result.returncode == 0, result.stderr
    assert "1 damaged lines" in result.stdout
