"""One atomic write: the old file survives a failure, no temporary file is left, mode 0644."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tools.atomic_write import (
    atomic_open,
    atomic_path,
    replace_directory,
    write_bytes,
    write_text,
)


class Boom(RuntimeError):
    pass


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_text_replaces_and_sets_0644(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "report.json"
    old_umask = os.umask(0o077)  # a private umask must not make the file private
    try:
        write_text(target, "first")
        write_text(target, "second ✓")
    finally:
        os.umask(old_umask)
    assert target.read_text(encoding="utf-8") == "second ✓"
    assert _mode(target) == 0o644
    assert os.listdir(target.parent) == ["report.json"]


def test_write_bytes_round_trips(tmp_path: Path) -> None:
    target = tmp_path / "blob.bin"
    write_bytes(target, b"\x00\xff")
    assert target.read_bytes() == b"\x00\xff"
    assert _mode(target) == 0o644


def test_a_failure_mid_stream_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "run.trec"
    write_text(target, "old\n")
    with pytest.raises(Boom), atomic_open(target) as handle:
        handle.write("half of the new")
        handle.flush()
        raise Boom
    assert target.read_text(encoding="utf-8") == "old\n"
    assert os.listdir(tmp_path) == ["run.trec"]


def test_a_failure_before_the_first_write_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new.json"
    with pytest.raises(Boom), atomic_open(target, "wb"):
        raise Boom
    assert os.listdir(tmp_path) == []


def test_atomic_path_serves_a_library_that_wants_a_path(tmp_path: Path) -> None:
    target = tmp_path / "rows.parquet"
    table = pa.table({"a": [1, 2, 3]})
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        pq.write_table(table, tmp)
        assert not target.exists()  # nothing under the final name until the block ends
    assert pq.read_table(target).equals(table)
    assert _mode(target) == 0o644
    with pytest.raises(Boom), atomic_path(target) as tmp:
        tmp.write_bytes(b"not parquet")
        raise Boom
    assert pq.read_table(target).equals(table)
    assert os.listdir(tmp_path) == ["rows.parquet"]


def test_atomic_open_refuses_read_and_append_modes(tmp_path: Path) -> None:
    for mode in ("r", "a", "r+"):
        with pytest.raises(ValueError, match="mode"), atomic_open(tmp_path / "x", mode):
            pass


def test_replace_directory_swaps_a_whole_folder(tmp_path: Path) -> None:
    target = tmp_path / "model"
    first = tmp_path / ".staging-1"
    first.mkdir()
    (first / "a.txt").write_text("one")
    replace_directory(first, target)
    assert (target / "a.txt").read_text() == "one"

    second = tmp_path / ".staging-2"
    second.mkdir()
    (second / "b.txt").write_text("two")
    replace_directory(second, target)
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no staging, no old copy left aside
