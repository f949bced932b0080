"""Episode records and the crash-safe, append-only log they are written to.

Format: JSON Lines, one envelope per line::

    {"crc32":"1a2b3c4d","len":1234,"record":{...the episode...}}

Why JSONL rather than SQLite WAL: the log is read by people (``grep``, ``jq .record``) and by
the RL job as a stream, and is shipped around as one file; every line is independent, so a
damaged line costs exactly one record. Why it is crash safe:

- each record is one ``write`` on an ``O_APPEND`` descriptor under an exclusive ``flock``
  (the chat and an RL collector may append at once), followed by ``fsync``: once ``append``
  returns, the record survives a kill or a power cut;
- a kill mid-write leaves at most one torn last line; the envelope's length and CRC-32 over
  the record's exact bytes detect it (and garbage such as a zero-filled tail), readers skip
  and report it, and the next append starts a fresh line, so earlier and later records
  always read back.

Records are never edited in place. Feedback after a turn appends the same episode again
with ``revision + 1``; readers keep the latest revision of each ``episode_id``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import uuid
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.atomic_write import fsync_directory
from tools.user_files import MAX_LINE_BYTES, bounded_lines, regular_file

SCHEMA_VERSION = 1
LOG_NAME = "trajectories.jsonl"
#: Where episodes come from: the terminal chat, the RL rollout collector, an evaluation run.
SOURCES = ("chat", "rollout", "eval")

_ENVELOPE = re.compile(
    rb'^\{"crc32":"(?P<crc>[0-9a-f]{8})","len":(?P<len>\d+),"record":(?P<body>.*)\}$'
)


def default_log_path(home: Path) -> Path:
    return home / "trajectories" / LOG_NAME


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# -- records ---------------------------------------------------------------------------------


@dataclass(slots=True)
class HitRecord:
    product_id: str
    rank: int
    score: float


@dataclass(slots=True)
class ToolAttempt:
    """One backend call: the tool the model asked for, or the fallback that replaced it."""

    tool: str
    arguments: dict[str, Any]
    ok: bool
    hits: list[HitRecord] = field(default_factory=list)
    error: str | None = None
    tool_ms: float = 0.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolAttempt:
        return cls(**{**data, "hits": [HitRecord(**h) for h in data["hits"]]})


@dataclass(slots=True)
class ToolCallRecord:
    """A call the model made and everything that ran for it (fallbacks included)."""

    call_id: str
    name: str
    arguments: dict[str, Any]
    attempts: list[ToolAttempt]
    #: NDCG@10 of the returned ranking against the episode's judgments, when it has them.
    ndcg_at_10: float | None = None

    @property
    def hits(self) -> list[HitRecord]:
        """The ranking the model saw: the first successful attempt's hits."""
        return next((a.hits for a in self.attempts if a.ok), [])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCallRecord:
        """A call as ``asdict`` wrote it (a log line, or a step kept in the graph's state)."""
        return cls(**{**data, "attempts": [ToolAttempt.from_dict(a) for a in data["attempts"]]})

    @property
    def tool_ms(self) -> float:
        return sum(a.tool_ms for a in self.attempts)


@dataclass(slots=True)
class ModelStep:
    """One model call: the exact prompt, what came back raw, and what was made of it."""

    prompt_messages: list[dict[str, Any]]
    raw_output: str
    #: Native (OpenAI ``tool_calls``) calls as the server returned them.
    raw_tool_calls: list[dict[str, Any]]
    #: The calls that were run: ``{"id", "name", "arguments"}``.
    parsed_calls: list[dict[str, Any]]
    parse_class: str
    #: ``native`` (server-parsed tool_calls), ``text`` (parsed from content) or ``none``.
    parse_source: str
    problems: list[str]
    #: ``tool_calls``, ``answer``, ``clarify``, ``fallback_search`` or ``timeout``.
    decision: str
    model_ms: float
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    #: What this step added to the conversation, as OpenAI dicts: the assistant message and,
    #: for tool calls, the tool messages the model then read.
    output_messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Reward:
    total: float
    #: Named parts that add up to ``total`` (see ``agent.conversation.episode_reward``).
    components: dict[str, float]
    #: ``judgments`` when the episode had judged products, else ``live``.
    source: str


@dataclass(slots=True)
class Feedback:
    kind: str  # like | buy
    product_id: str
    position: int
    at: str


@dataclass(slots=True)
class Latency:
    model_ms: float
    #: Wall time of the tool rounds (each call's own time is in its ``ToolAttempt``).
    tool_ms: float
    #: Graph overhead: the turn's wall time minus model and tool time.
    graph_ms: float
    total_ms: float


@dataclass(slots=True)
class EpisodeRecord:
    """One turn of one conversation, self-contained: what the RL job and exports read."""

    conversation_id: str
    turn: int
    source: str
    model_id: str
    model_checkpoint: str | None
    dataset: str
    catalog_version: str | None
    user_text: str
    steps: list[ModelStep]
    final_answer: str
    #: What the shopper was shown, from the catalog: position, id, title, brand, price.
    recommended: list[dict[str, Any]]
    grounding_violations: list[str]
    stop_reason: str
    reward: Reward
    latency: Latency
    started_at: str
    finished_at: str
    query_id: str | None = None
    feedback: list[Feedback] = field(default_factory=list)
    revision: int = 0
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown episode source {self.source!r}; known: {', '.join(SOURCES)}")

    @property
    def episode_id(self) -> str:
        return episode_id_for(self.conversation_id, self.turn)

    def ranking(self) -> list[str]:
        """The products the turn showed, in order, then the rest of its search hits, call by
        call, each once: what an eval scores the turn by (NDCG@10 reads what was shown,
        recall@100 what the searches found)."""
        ids = [str(shown["id"]) for shown in self.recommended]
        for step in self.steps:
            for call in step.tool_calls:
                ids.extend(hit.product_id for hit in call.hits)
        return list(dict.fromkeys(ids))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["episode_id"] = self.episode_id
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpisodeRecord:
        steps = [
            ModelStep(
                **{
                    **step,
                    "tool_calls": [
                        ToolCallRecord.from_dict(call) for call in step.get("tool_calls", [])
                    ],
                }
            )
            for step in data["steps"]
        ]
        plain = {k: v for k, v in data.items() if k != "episode_id"}
        return cls(
            **{
                **plain,
                "steps": steps,
                "reward": Reward(**data["reward"]),
                "latency": Latency(**data["latency"]),
                "feedback": [Feedback(**f) for f in data.get("feedback", [])],
            }
        )


def episode_id_for(conversation_id: str, turn: int) -> str:
    return f"{conversation_id}:{turn}"


# -- the log ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DamagedLine:
    line_number: int
    reason: str


@dataclass(slots=True)
class LogContents:
    records: list[dict[str, Any]]
    damaged: list[DamagedLine]
    #: The file line of each record (``line_numbers[i]`` holds ``records[i]``), so a reader
    #: that refuses a record can say where it is.
    line_numbers: list[int] = field(default_factory=list)


def encode_line(record: dict[str, Any]) -> bytes:
    body = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    head = f'{{"crc32":"{zlib.crc32(body):08x}","len":{len(body)},"record":'.encode()
    return head + body + b"}\n"


def decode_line(line: bytes) -> dict[str, Any]:
    """One envelope -> its record; ``ValueError`` names what is wrong with a damaged line."""
    match = _ENVELOPE.match(line.rstrip(b"\r\n"))
    if match is None:
        raise ValueError("not a log envelope (torn or foreign line)")
    body = match.group("body")
    if len(body) != int(match.group("len")):
        raise ValueError(f"length {len(body)} != recorded {match.group('len')} (torn write)")
    if f"{zlib.crc32(body):08x}" != match.group("crc").decode():
        raise ValueError("checksum mismatch")
    record = json.loads(body)
    if not isinstance(record, dict):
        raise ValueError("record is not an object")
    return record


class TrajectoryLog:
    """Append-only episode log at ``path`` (created on first append)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: EpisodeRecord | dict[str, Any]) -> None:
        """Durably append one record: when this returns, it is on disk."""
        data = record.to_dict() if isinstance(record, EpisodeRecord) else dict(record)
        line = encode_line(data)
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _ends_mid_line(fd):
                line = b"\n" + line  # a writer died mid-record: never glue onto its torn tail
            _write_all(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock
        if created:
            fsync_directory(self.path.parent)

    def read(self) -> LogContents:
        """Every intact record in file order, and the lines that are not."""
        contents = LogContents([], [])
        if not self.path.exists():
            return contents
        regular_file(self.path, "the trajectory log")  # never /dev/zero or a FIFO
        with self.path.open("rb") as handle:
            for number, line in bounded_lines(handle):
                if line is None:
                    reason = f"longer than {MAX_LINE_BYTES:,} bytes"
                    contents.damaged.append(DamagedLine(number, reason))
                    continue
                if not line.strip():
                    continue
                try:
                    record = decode_line(line)
                except (ValueError, UnicodeDecodeError, RecursionError) as error:
                    contents.damaged.append(DamagedLine(number, str(error) or "too deeply nested"))
                    continue
                contents.records.append(record)
                contents.line_numbers.append(number)
        return contents

    def latest(self) -> list[dict[str, Any]]:
        """The newest revision of each episode, in order of first appearance."""
        return latest_revisions(self.read().records)

    def find(self, episode_id: str) -> dict[str, Any] | None:
        found = [r for r in self.read().records if r.get("episode_id") == episode_id]
        return max(found, key=lambda r: r.get("revision", 0)) if found else None


def latest_revisions(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        key = record.get("episode_id") or record.get("record_id") or str(len(latest))
        kept = latest.get(key)
        if kept is None or record.get("revision", 0) >= kept.get("revision", 0):
            latest[key] = record
    return list(latest.values())


def _ends_mid_line(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
