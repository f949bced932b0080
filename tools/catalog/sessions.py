"""Sessions: scripted shopper conversations, each standing for one judged query of a dataset.

The query writer must learn to turn a chatty conversation into the search that finds the
product. A session is the shopper's side of such a conversation; evaluation runs its turns
through the chat graph and scores what the last turn shows against the judgments of the query
the session stands for (its *intent*). Keeping sessions as a file, rather than generating them
inside each run, lets every run, model and strategy face exactly the same conversations.

The format is JSON Lines, one session per line (UTF-8), for example::

    {"id": "s1", "turns": ["hi! got pipe bender? thx"], "query": "pipe bender", "kind": "wordy"}
    {"id": "s2", "turns": ["ceiling fan", "outdoor with light please"], "query_id": "q93c1d0e2aa"}

- ``id``: a non-empty string, unique in the file.
- ``turns``: the shopper's messages in order: 1 to ``MAX_TURNS`` non-empty strings of at most
  ``MAX_TURN_CHARS`` characters each, none holding a NUL character.
- the intent, ``query`` (the text of one of the dataset's judged queries, matched ignoring case
  and runs of whitespace) or ``query_id`` (an id of the judgments); when a row has both, they
  must name the same query. Written files always carry ``query``, which a person can read.
- any other field (``kind``, ``phrasing``, ...) is kept verbatim in ``Session.extra`` and
  written back as it was read.

A row that breaks a rule is skipped and reported by its 1-based line number with a one-line
reason (``SessionFile.skipped``); blank lines are ignored. A file that cannot be read, or
that holds no usable session, is a ``BadInput``. Turn text is the shopper's, not ours: it is
kept literally (control characters included) and only made safe where it is displayed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.atomic_write import atomic_open
from tools.catalog.judgments import Judgments
from tools.catalog.splits import normalise_query
from tools.errors import BadInput, ShopagentError, one_line
from tools.user_files import bounded_lines, regular_file

MAX_TURNS = 20
MAX_TURN_CHARS = 2000
#: The fields the format itself defines; every other field of a row is ``extra``.
RESERVED_FIELDS = ("id", "turns", "query", "query_id")
_REASON_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Session:
    """One scripted conversation and the judged query it stands for."""

    id: str
    turns: tuple[str, ...]
    query_id: str
    query_text: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """How the conversation hides the query (``wordy``, ``restart``, ...); "" if unsaid."""
        value = self.extra.get("kind", "")
        return value if isinstance(value, str) else str(value)

    def to_json(self) -> dict[str, Any]:
        """The row as written: the query by its text (readable, and stable across id schemes)."""
        row: dict[str, Any] = {"id": self.id, "turns": list(self.turns), "query": self.query_text}
        row.update((key, value) for key, value in self.extra.items() if key not in RESERVED_FIELDS)
        return row


@dataclass(slots=True)
class SessionFile:
    """The usable sessions of a file, and the rows skipped as ``(line number, reason)``."""

    sessions: list[Session]
    skipped: list[tuple[int, str]]


class _BadRow(Exception):
    """One row that cannot be used; the message is the reason reported for its line."""


def read_sessions(path: Path | str, judgments: Judgments) -> SessionFile:
    """Every usable session of a JSONL file; bad rows are skipped and listed by line number."""
    path = Path(path)
    try:
        regular_file(path, "sessions file")
        handle = path.open("rb")
    except ShopagentError as error:
        raise BadInput(str(error)) from None
    except OSError as error:
        raise BadInput(
            f"sessions file {path}: cannot be read ({error.strerror or error})"
        ) from None
    by_text = _query_index(judgments)
    sessions: list[Session] = []
    skipped: list[tuple[int, str]] = []
    seen_ids: dict[str, int] = {}
    with handle:
        for number, raw in bounded_lines(handle):
            if raw is not None and not raw.strip():
                continue
            try:
                if number == 1 and raw is not None:
                    raw = raw.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark some editors add
                session = _parse_row(raw, judgments, by_text)
                if session.id in seen_ids:
                    raise _BadRow(
                        f"duplicate id {session.id!r} (first on line {seen_ids[session.id]})"
                    )
            except _BadRow as error:
                skipped.append((number, one_line(error, _REASON_LIMIT)))
                continue
            seen_ids[session.id] = number
            sessions.append(session)
    if not sessions:
        detail = f"; line {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise BadInput(
            f"sessions file {path}: no usable session "
            f"({len(skipped)} row{'' if len(skipped) == 1 else 's'} skipped{detail})"
        )
    return SessionFile(sessions, skipped)


def write_sessions(path: Path | str, sessions: Iterable[Session]) -> int:
    """Replace ``path`` with ``sessions``, one JSON line each, atomically; returns how many.

    Ids must be unique (a reader would skip the repeats), and an empty file is refused (a
    reader would refuse it)."""
    rows = list(sessions)
    if Path(path).is_dir():
        raise BadInput(f"sessions file {path} is a folder, not a file")
    if not rows:
        raise BadInput(f"no session to write to {path}")
    ids = [session.id for session in rows]
    if len(set(ids)) != len(ids):
        repeated = next(i for n, i in enumerate(ids) if i in ids[:n])
        raise BadInput(f"session id {repeated!r} is used twice; ids must be unique in a file")
    with atomic_open(path, "w") as handle:
        for session in rows:
            handle.write(json.dumps(session.to_json(), ensure_ascii=False) + "\n")
    return len(rows)


def group_by(sessions: Iterable[Session], field_name: str) -> dict[str, list[Session]]:
    """Sessions grouped by the value of one extra field (``kind``, ``phrasing``, ...), in the
    order each value first appears; a session without the field is grouped under ""."""
    groups: dict[str, list[Session]] = {}
    for session in sessions:
        value = session.extra.get(field_name, "")
        key = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        groups.setdefault(key, []).append(session)
    return groups


# -- one row ---------------------------------------------------------------------------------


def _query_index(judgments: Judgments) -> dict[str, str]:
    """Normalised query text -> query id (the first query wins where two normalise alike)."""
    index: dict[str, str] = {}
    for query in judgments.queries.values():
        index.setdefault(normalise_query(query.text), query.id)
    return index


def _parse_row(raw: bytes | None, judgments: Judgments, by_text: Mapping[str, str]) -> Session:
    if raw is None:
        raise _BadRow("line too long")
    try:
        row = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise _BadRow("not UTF-8") from None
    except (ValueError, RecursionError) as error:
        raise _BadRow(f"not JSON ({error})") from None
    if not isinstance(row, dict):
        raise _BadRow(f"not a JSON object (a {type(row).__name__})")
    session_id = row.get("id")
    if not isinstance(session_id, str) or not session_id.strip():
        raise _BadRow("id missing or not a non-empty string")
    turns = _turns(row.get("turns"))
    query_id = _intent(row, judgments, by_text)
    extra = {key: value for key, value in row.items() if key not in RESERVED_FIELDS}
    return Session(session_id, turns, query_id, judgments.queries[query_id].text, extra)


def _turns(value: object) -> tuple[str, ...]:
    if value is None:
        raise _BadRow("turns missing")
    if not isinstance(value, list):
        raise _BadRow("turns is not a list")
    if not value:
        raise _BadRow("turns is empty")
    if len(value) > MAX_TURNS:
        raise _BadRow(f"{len(value)} turns, more than {MAX_TURNS}")
    for number, turn in enumerate(value, 1):
        if not isinstance(turn, str):
            raise _BadRow(f"turn {number} is not a string")
        if not turn.strip():
            raise _BadRow(f"turn {number} is empty")
        if len(turn) > MAX_TURN_CHARS:
            raise _BadRow(f"turn {number} has {len(turn)} characters, more than {MAX_TURN_CHARS}")
        if "\x00" in turn:
            raise _BadRow(f"turn {number} holds a NUL character")
    return tuple(value)


def _intent(row: Mapping[str, Any], judgments: Judgments, by_text: Mapping[str, str]) -> str:
    """The query id a row stands for, from ``query``, ``query_id`` or both (which must agree)."""
    text, given_id = row.get("query"), row.get("query_id")
    if text is None and given_id is None:
        raise _BadRow("no intent: the row needs query or query_id")
    from_text = None
    if text is not None:
        if not isinstance(text, str):
            raise _BadRow("query is not a string")
        from_text = by_text.get(normalise_query(text))
        if from_text is None:
            raise _BadRow(f"query {text[:80]!r} is not a judged query of the dataset")
    if given_id is not None:
        if not isinstance(given_id, str) or given_id not in judgments.queries:
            raise _BadRow(f"query_id {str(given_id)[:80]!r} is not in the judgments")
        if from_text is not None and from_text != given_id:
            raise _BadRow(f"query and query_id disagree ({from_text} vs {given_id})")
        return given_id
    assert from_text is not None
    return from_text


def _refuse_constant(name: str) -> float:
    """``NaN`` and ``Infinity`` are not JSON; a field holding one could not be written back."""
    raise ValueError(f"{name} is not a JSON value")
