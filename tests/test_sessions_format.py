"""The sessions file format: what is read, what is skipped (and reported by line), what survives.

A sessions file is user data: every bad row must cost only its own line, named with a reason,
and every field we do not know must come back out exactly as it went in.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.catalog.judgments import Judgments, Query
from tools.catalog.sessions import (
    MAX_TURN_CHARS,
    MAX_TURNS,
    Session,
    group_by,
    read_sessions,
    write_sessions,
)
from tools.errors import BadInput


@pytest.fixture()
def judgments() -> Judgments:
    judged = Judgments()
    for text, product in (("wireless mouse", "m1"), ("usb keyboard", "k1"), ("hdmi cable", "c1")):
        judged.add(Query.from_text(text), product, 1)
    return judged


def qid(judgments: Judgments, text: str) -> str:
    return next(q.id for q in judgments.queries.values() if q.text == text)


def write_lines(path: Path, *rows: object) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = {"id": "ok", "turns": ["hi, wireless mouse please"], "query": "wireless mouse"}


def test_a_written_file_reads_back_the_same_sessions(tmp_path: Path, judgments: Judgments) -> None:
    sessions = [
        Session(
            "s1",
            ("hello", "wireless mouse, black"),
            qid(judgments, "wireless mouse"),
            "wireless mouse",
            {"kind": "product_then_modifiers", "phrasing": "seen", "note": {"a": [1, 2.5, None]}},
        ),
        Session("s2", ("usb keyboard",), qid(judgments, "usb keyboard"), "usb keyboard", {}),
    ]
    assert write_sessions(tmp_path / "s.jsonl", sessions) == 2
    read = read_sessions(tmp_path / "s.jsonl", judgments)
    assert read.sessions == sessions
    assert read.skipped == []
    assert read.sessions[0].kind == "product_then_modifiers"
    assert read.sessions[1].kind == ""


def test_unknown_fields_survive_read_then_write_verbatim(
    tmp_path: Path, judgments: Judgments
) -> None:
    row = {
        "id": "x",
        "turns": ["usb keyboard ¿ñ 🙂"],
        "query": "usb keyboard",
        "kind": "wordy",
        "phrasing": "held-out",
        "weights": {"nested": [1, {"deep": True}], "empty": {}},
        "note": "\u2028 line separator and \t tab",
    }
    source = write_lines(tmp_path / "in.jsonl", row)
    copy = tmp_path / "out.jsonl"
    write_sessions(copy, read_sessions(source, judgments).sessions)
    assert json.loads(copy.read_text(encoding="utf-8")) == row
    again = read_sessions(copy, judgments).sessions[0]
    assert dict(again.extra) == {k: v for k, v in row.items() if k not in ("id", "turns", "query")}


def test_a_row_by_query_id_is_written_with_the_query_text(
    tmp_path: Path, judgments: Judgments
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        {"id": "a", "turns": ["cable?"], "query_id": qid(judgments, "hdmi cable")},
    )
    session = read_sessions(source, judgments).sessions[0]
    assert (session.query_id, session.query_text) == (qid(judgments, "hdmi cable"), "hdmi cable")
    assert session.to_json() == {"id": "a", "turns": ["cable?"], "query": "hdmi cable"}


@pytest.mark.parametrize("text", ["Wireless Mouse", "  WIRELESS \t mouse ", "wireless  mouse"])
def test_the_intent_ignores_case_and_whitespace(
    tmp_path: Path, judgments: Judgments, text: str
) -> None:
    source = write_lines(tmp_path / "s.jsonl", {"id": "a", "turns": ["x"], "query": text})
    session = read_sessions(source, judgments).sessions[0]
    assert session.query_id == qid(judgments, "wireless mouse")
    assert session.query_text == "wireless mouse"


def test_query_and_query_id_that_agree_are_one_intent(tmp_path: Path, judgments: Judgments) -> None:
    row = {
        "id": "a",
        "turns": ["x"],
        "query": "HDMI cable",
        "query_id": qid(judgments, "hdmi cable"),
    }
    assert read_sessions(write_lines(tmp_path / "s.jsonl", row), judgments).sessions[0].query_id


BAD_ROWS = [
    ("{not json", "not JSON"),
    ('{"id": "n", "turns": ["x"], "query": "usb keyboard", "v": NaN}', "not JSON"),
    ('["a", "list"]', "not a JSON object"),
    ({"turns": ["x"], "query": "usb keyboard"}, "id missing"),
    ({"id": 7, "turns": ["x"], "query": "usb keyboard"}, "id missing or not a non-empty string"),
    ({"id": "b", "query": "usb keyboard"}, "turns missing"),
    ({"id": "b", "turns": "usb keyboard", "query": "usb keyboard"}, "turns is not a list"),
    ({"id": "b", "turns": [], "query": "usb keyboard"}, "turns is empty"),
    ({"id": "b", "turns": ["x", 3], "query": "usb keyboard"}, "turn 2 is not a string"),
    ({"id": "b", "turns": ["x", "  "], "query": "usb keyboard"}, "turn 2 is empty"),
    ({"id": "b", "turns": ["a\x00b"], "query": "usb keyboard"}, "turn 1 holds a NUL character"),
    (
        {"id": "b", "turns": ["x" * (MAX_TURN_CHARS + 1)], "query": "usb keyboard"},
        f"more than {MAX_TURN_CHARS}",
    ),
    (
        {"id": "b", "turns": ["x"] * (MAX_TURNS + 1), "query": "usb keyboard"},
        f"{MAX_TURNS + 1} turns, more than {MAX_TURNS}",
    ),
    ({"id": "b", "turns": ["x"]}, "no intent"),
    ({"id": "b", "turns": ["x"], "query": "garden hose"}, "is not a judged query"),
    ({"id": "b", "turns": ["x"], "query": ["usb keyboard"]}, "query is not a string"),
    ({"id": "b", "turns": ["x"], "query_id": "q0000000000"}, "is not in the judgments"),
    ({"id": "ok", "turns": ["x"], "query": "usb keyboard"}, "duplicate id 'ok' (first on line 1)"),
]


@pytest.mark.parametrize(("row", "reason"), BAD_ROWS, ids=[reason for _, reason in BAD_ROWS])
def test_a_bad_row_is_skipped_and_reported_by_line(
    tmp_path: Path, judgments: Judgments, row: object, reason: str
) -> None:
    path = write_lines(tmp_path / "s.jsonl", GOOD, "", row, {**GOOD, "id": "after"})
    read = read_sessions(path, judgments)
    assert [s.id for s in read.sessions] == ["ok", "after"]
    assert len(read.skipped) == 1
    line, message = read.skipped[0]
    assert line == 3  # 1-based, the blank line counted
    assert reason in message
    assert "\n" not in message


def test_query_and_query_id_that_disagree_are_a_bad_row(
    tmp_path: Path, judgments: Judgments
) -> None:
    row = {
        "id": "b",
        "turns": ["x"],
        "query": "usb keyboard",
        "query_id": qid(judgments, "hdmi cable"),
    }
    read = read_sessions(write_lines(tmp_path / "s.jsonl", GOOD, row), judgments)
    assert read.skipped == [
        (
            2,
            f"query and query_id disagree ({qid(judgments, 'usb keyboard')} vs "
            f"{qid(judgments, 'hdmi cable')})",
        )
    ]


def test_a_line_that_is_not_utf8_is_a_bad_row(tmp_path: Path, judgments: Judgments) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b'\n{"id": "\xff"}\n')
    assert read_sessions(path, judgments).skipped == [(2, "not UTF-8")]


def test_a_byte_order_mark_is_not_a_bad_row(tmp_path: Path, judgments: Judgments) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n")
    assert [s.id for s in read_sessions(path, judgments).sessions] == ["ok"]


def test_control_characters_are_kept_literally(tmp_path: Path, judgments: Judgments) -> None:
    turn = "\x1b[31mred\x1b[0m \r wireless\u202e mouse \x07"
    path = write_lines(tmp_path / "s.jsonl", {**GOOD, "turns": [turn]})
    session = read_sessions(path, judgments).sessions[0]
    assert session.turns == (turn,)
    write_sessions(tmp_path / "again.jsonl", [session])
    assert read_sessions(tmp_path / "again.jsonl", judgments).sessions[0].turns == (turn,)


def test_a_file_without_a_usable_session_is_bad_input(tmp_path: Path, judgments: Judgments) -> None:
    path = write_lines(tmp_path / "s.jsonl", "", {"id": "b", "turns": []})
    with pytest.raises(BadInput, match=r"no usable session \(1 row skipped; line 2: turns is"):
        read_sessions(path, judgments)
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(BadInput, match="no usable session"):
        read_sessions(tmp_path / "empty.jsonl", judgments)


@pytest.mark.parametrize("name", ["absent.jsonl", "folder"])
def test_a_file_that_cannot_be_read_is_bad_input(
    tmp_path: Path, judgments: Judgments, name: str
) -> None:
    (tmp_path / "folder").mkdir()
    with pytest.raises(BadInput, match=name):
        read_sessions(tmp_path / name, judgments)


def test_writing_refuses_repeated_ids_and_nothing(tmp_path: Path, judgments: Judgments) -> None:
    one = Session("same", ("x",), qid(judgments, "hdmi cable"), "hdmi cable", {})
    with pytest.raises(BadInput, match="'same' is used twice"):
        write_sessions(tmp_path / "s.jsonl", [one, one])
    with pytest.raises(BadInput, match="no session"):
        write_sessions(tmp_path / "s.jsonl", [])
    assert not (tmp_path / "s.jsonl").exists()
    with pytest.raises(BadInput, match="is a folder"):
        write_sessions(tmp_path, [one])


def test_group_by_an_extra_field_keeps_first_seen_order(judgments: Judgments) -> None:
    query = qid(judgments, "hdmi cable")
    sessions = [
        Session("a", ("x",), query, "hdmi cable", {"kind": "restart"}),
        Session("b", ("x",), query, "hdmi cable", {"kind": "wordy"}),
        Session("c", ("x",), query, "hdmi cable", {}),
        Session("d", ("x",), query, "hdmi cable", {"kind": "restart"}),
    ]
    groups = group_by(sessions, "kind")
    assert list(groups) == ["restart", "wordy", ""]
    assert [s.id for s in groups["restart"]] == ["a", "d"]
    assert [s.id for s in groups[""]] == ["c"]
