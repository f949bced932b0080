"""Trajectories out of the log, for training and analysis, in four formats.

- ``jsonl``: the episode records themselves (latest revision of each), one per line;
- ``parquet``: one row per episode, flat columns for analysis plus the chat ``messages`` and
  the full ``record`` as JSON;
- ``hf``: the same rows as a Hugging Face dataset directory (``datasets.load_from_disk``);
- ``openai-chat``: chat fine-tuning records ``{"messages": [...], "tools": [...]}``: the last
  model step's prompt (and its tool round, when the turn ended on one) plus the grounded
  final answer; for a one-step rollout record, the prompt plus the tool call it made.
  Assistant messages of earlier turns get ``weight: 0`` so each turn is trained once, in the
  episode it belongs to.

Filters: ``min_reward`` (the episode's total reward, feedback included) and ``since`` (the
episode finished at or after that time). Every record is checked once against the
``EpisodeRecord`` shape before any format sees it: a line whose checksum is right but whose
record is not an episode (hand-edited, or written by something else) is skipped and reported
by line number, like a damaged line, instead of stopping one format and passing through
another. Every output is written to a temporary path and
renamed into place, so a failed export never leaves half a file.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from agent.trajectory.log import EpisodeRecord, TrajectoryLog, latest_revisions
from agent.trajectory.openai_chat import openai_chat_example, validate_chat_example
from tools.atomic_write import atomic_open, atomic_path, replace_directory
from tools.errors import BadInput, NotFound
from tools.user_files import regular_file

FORMATS = ("jsonl", "parquet", "hf", "openai-chat")

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: Keys a chat fine-tuning message may carry (OpenAI's chat format, tools included).

_TOOL_CALL = pa.struct(
    [
        ("id", pa.string()),
        ("type", pa.string()),
        ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())])),
    ]
)
_MESSAGE = pa.struct(
    [
        ("role", pa.string()),
        ("content", pa.string()),
        ("tool_call_id", pa.string()),
        ("tool_calls", pa.list_(_TOOL_CALL)),
        ("weight", pa.int64()),
    ]
)
ROW_SCHEMA = pa.schema(
    [
        ("episode_id", pa.string()),
        ("record_id", pa.string()),
        ("revision", pa.int64()),
        ("source", pa.string()),
        ("conversation_id", pa.string()),
        ("turn", pa.int64()),
        ("model_id", pa.string()),
        ("model_checkpoint", pa.string()),
        ("dataset", pa.string()),
        ("catalog_version", pa.string()),
        ("query_id", pa.string()),
        ("user_text", pa.string()),
        ("final_answer", pa.string()),
        ("stop_reason", pa.string()),
        ("reward", pa.float64()),
        ("reward_source", pa.string()),
        ("reward_components", pa.string()),
        ("n_model_steps", pa.int64()),
        ("n_tool_calls", pa.int64()),
        ("parse_classes", pa.list_(pa.string())),
        ("tool_names", pa.list_(pa.string())),
        ("recommended_ids", pa.list_(pa.string())),
        ("grounding_violations", pa.list_(pa.string())),
        ("feedback", pa.string()),
        ("model_ms", pa.float64()),
        ("tool_ms", pa.float64()),
        ("graph_ms", pa.float64()),
        ("total_ms", pa.float64()),
        ("started_at", pa.timestamp("ms", tz="UTC")),
        ("finished_at", pa.timestamp("ms", tz="UTC")),
        ("messages", pa.list_(_MESSAGE)),
        ("record", pa.string()),
    ]
)


@dataclass(frozen=True, slots=True)
class ExportReport:
    format: str
    path: Path
    exported: int
    filtered_out: int
    #: Log lines that could not be read (a torn last record after a crash, for instance).
    damaged_lines: int
    #: Intact lines whose record is not an episode (wrong shape), skipped.
    malformed_records: int = 0
    #: Every skipped line, damaged or malformed, in file order.
    skipped: tuple[SkippedLine, ...] = ()


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A log line an export left out, and why."""

    line_number: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line_number}: {self.reason}"


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``2025-01-31``, ``2025-01-31T12:00+02:00`` (UTC if no zone), or relative: ``12h``, ``7d``."""
    now = now or datetime.now(UTC)
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2)
        try:
            return now - timedelta(**{_UNITS[unit]: amount})
        except OverflowError:  # further back than datetime reaches: every episode is newer
            return datetime.min.replace(tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(
            f"--since {text!r} is not a time: use ISO 8601 (2025-01-31T12:00) or 12h, 7d"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def select_records(
    records: Iterable[dict[str, Any]],
    *,
    min_reward: float | None = None,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """The latest revision of each episode that passes the filters, in log order."""
    chosen = []
    for record in latest_revisions(records):
        if min_reward is not None and float(record["reward"]["total"]) < min_reward:
            continue
        if since is not None and _time(record["finished_at"]) < since:
            continue
        chosen.append(record)
    return chosen


def export_trajectories(
    log_path: Path,
    out: Path,
    fmt: str,
    *,
    min_reward: float | None = None,
    since: datetime | None = None,
    overwrite: bool = False,
    protected: Sequence[Path] = (),
) -> ExportReport:
    """Write the selected episodes of the log at ``log_path`` to ``out`` in format ``fmt``.

    ``protected``: folders whose contents an export must never replace (the data home's
    datasets, indexes and models); the log itself and any folder holding it always are.
    """
    if fmt not in FORMATS:
        raise BadInput(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if min_reward is not None and not math.isfinite(min_reward):
        raise BadInput(f"--min-reward must be a finite number, not {min_reward}")
    if not log_path.exists():
        raise NotFound(f"no trajectory log at {log_path}: chat first, or pass --log PATH")
    regular_file(log_path, "the trajectory log")
    check_export_target(log_path, out, fmt, protected)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    contents = TrajectoryLog(log_path).read()
    skipped = [SkippedLine(d.line_number, d.reason) for d in contents.damaged]
    records: list[dict[str, Any]] = []
    malformed = 0
    for number, record in zip(contents.line_numbers, contents.records, strict=True):
        problem = record_problem(record, fmt)
        if problem is None:
            records.append(record)
        else:
            malformed += 1
            skipped.append(SkippedLine(number, problem))
    total = len(latest_revisions(records))
    chosen = select_records(records, min_reward=min_reward, since=since)
    WRITERS[fmt](chosen, out)
    return ExportReport(
        fmt,
        out,
        len(chosen),
        total - len(chosen),
        len(contents.damaged),
        malformed,
        tuple(sorted(skipped, key=lambda line: line.line_number)),
    )


def check_export_target(log_path: Path, out: Path, fmt: str, protected: Sequence[Path]) -> None:
    """Refuse, in one line, an ``out`` whose replacement would destroy data.

    An export replaces ``out`` whole (atomically, so with ``--overwrite`` the old content is
    gone): the log it reads from, a folder holding that log (an ``hf`` export is a folder), a
    file or folder inside a protected folder, or a folder that is not an earlier ``hf`` export
    would be lost. Links and ``..`` are resolved first, so no spelling of a path slips past.
    """
    target, log = out.resolve(), log_path.resolve()
    if target == log or (out.exists() and os.path.samefile(out, log_path)):
        raise BadInput(f"{out} is the trajectory log being exported; write the export elsewhere")
    if log.is_relative_to(target):
        raise BadInput(f"{out} holds the trajectory log being exported; write the export elsewhere")
    for folder in protected:
        if target.is_relative_to(folder.resolve()) or folder.resolve().is_relative_to(target):
            raise BadInput(f"{out} is shopagent's own data ({folder}); write the export elsewhere")
    if target.is_dir():
        if fmt != "hf":
            raise BadInput(f"{out} is a folder; a {fmt} export is one file")
        if not any((target / name).is_file() for name in _HF_EXPORT_FILES):
            raise BadInput(f"{out} is a folder that is not an earlier hf export; not replacing it")
    elif fmt == "hf" and target.exists():
        raise BadInput(f"{out} is a file; an hf export is a folder")


#: The files ``datasets.Dataset.save_to_disk`` writes: a folder holding one is an hf export.
_HF_EXPORT_FILES = ("dataset_info.json", "state.json", "dataset_dict.json")


def record_problem(record: dict[str, Any], fmt: str = "jsonl") -> str | None:
    """Why ``record`` cannot be exported (one line), or ``None`` when every format can take it.

    The shape is the ``EpisodeRecord`` dataclasses' (types checked by pydantic); then the
    fields every format reads are read once (``episode_row``), so no writer meets a surprise.
    For ``openai-chat`` the example must also pass ``validate_chat_example``.
    """
    from pydantic import ValidationError

    try:
        _record_adapter().validate_python(record)
        episode_row(record)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        return _capped(f"not an episode record: {where}: {first['msg']}")
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        return _capped(f"not an episode record: {type(error).__name__}: {error}")
    if fmt == "openai-chat":
        problems = validate_chat_example(openai_chat_example(record))
        if problems:
            return _capped(f"not a chat fine-tuning example: {problems[0]}")
    if fmt in _ARROW_FORMATS:
        # The row schema is stricter than the record's (a role must be a string): the one
        # record pays its own conversion, and a writer never meets a value it cannot hold.
        try:
            rows_table([record])
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as error:
            return _capped(f"not an episode record: {type(error).__name__}: {error}")
    return None


_ARROW_FORMATS = ("parquet", "hf")


@functools.cache
def _record_adapter() -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(EpisodeRecord)


def _capped(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


# -- formats ---------------------------------------------------------------------------------


def write_jsonl(records: Sequence[dict[str, Any]], out: Path) -> None:
    _write_text_lines((json.dumps(r, ensure_ascii=False) for r in records), out)


def write_openai_chat(records: Sequence[dict[str, Any]], out: Path) -> None:
    examples = [openai_chat_example(r) for r in records]
    for record, example in zip(records, examples, strict=True):
        problems = validate_chat_example(example)
        if problems:
            raise BadInput(f"episode {record.get('episode_id')}: {problems[0]}")
    _write_text_lines((json.dumps(e, ensure_ascii=False) for e in examples), out)


def write_parquet(records: Sequence[dict[str, Any]], out: Path) -> None:
    table = rows_table(records)
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp)


def write_hf(records: Sequence[dict[str, Any]], out: Path) -> None:
    import datasets

    datasets.disable_progress_bars()  # the command prints its own one-line summary
    table = rows_table(records)
    features = datasets.Features.from_arrow_schema(ROW_SCHEMA)
    # from_dict, not from_list: an empty selection still has every column (and so a schema).
    dataset = datasets.Dataset.from_dict(table.to_pydict(), features=features)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        # One shard always: an empty selection saved as 0 shards cannot be loaded back.
        dataset.save_to_disk(str(tmp), num_shards=1)
        replace_directory(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


WRITERS: dict[str, Callable[[Sequence[dict[str, Any]], Path], None]] = {
    "jsonl": write_jsonl,
    "parquet": write_parquet,
    "hf": write_hf,
    "openai-chat": write_openai_chat,
}


# -- rows and chat examples ------------------------------------------------------------------


def rows_table(records: Sequence[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([episode_row(r) for r in records], schema=ROW_SCHEMA)


def episode_row(record: Mapping[str, Any]) -> dict[str, Any]:
    steps = record.get("steps") or []
    calls = [call for step in steps for call in step.get("tool_calls") or []]
    latency = record.get("latency") or {}
    return {
        "episode_id": record.get("episode_id"),
        "record_id": record.get("record_id"),
        "revision": int(record.get("revision", 0)),
        "source": record.get("source"),
        "conversation_id": record.get("conversation_id"),
        "turn": int(record.get("turn", 0)),
        "model_id": record.get("model_id"),
        "model_checkpoint": record.get("model_checkpoint"),
        "dataset": record.get("dataset"),
        "catalog_version": record.get("catalog_version"),
        "query_id": record.get("query_id"),
        "user_text": record.get("user_text"),
        "final_answer": record.get("final_answer"),
        "stop_reason": record.get("stop_reason"),
        "reward": float(record["reward"]["total"]),
        "reward_source": record["reward"].get("source"),
        "reward_components": json.dumps(record["reward"].get("components", {})),
        "n_model_steps": len(steps),
        "n_tool_calls": len(calls),
        "parse_classes": [s.get("parse_class") for s in steps],
        "tool_names": [c.get("name") for c in calls],
        "recommended_ids": [p["id"] for p in record.get("recommended") or []],
        "grounding_violations": list(record.get("grounding_violations") or []),
        "feedback": json.dumps(record.get("feedback") or []),
        "model_ms": latency.get("model_ms"),
        "tool_ms": latency.get("tool_ms"),
        "graph_ms": latency.get("graph_ms"),
        "total_ms": latency.get("total_ms"),
        "started_at": _time(record["started_at"]) if record.get("started_at") else None,
        "finished_at": _time(record["finished_at"]) if record.get("finished_at") else None,
        "messages": [_arrow_message(m) for m in openai_chat_example(record)["messages"]],
        "record": json.dumps(record, ensure_ascii=False),
    }


# -- helpers ---------------------------------------------------------------------------------


def _arrow_message(message: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "role": message.get("role"),
        "content": message.get("content"),
        "tool_call_id": message.get("tool_call_id"),
        "tool_calls": message.get("tool_calls"),
        "weight": message.get("weight"),
    }


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _write_text_lines(lines: Iterable[str], out: Path) -> None:
    with atomic_open(out) as handle:
        for line in lines:
            handle.write(line + "\n")
