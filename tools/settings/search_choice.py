"""Whether the chat fuses concept results into its keyword search, per dataset, and why.

The concept index (MiniLM in Chroma) finds products whose text shares no word with the request,
but on a catalog where keywords already rank well it mostly adds noise: on Home Depot dev the
tool path fused with it lost NDCG@10, on Chorus it gained a little. So whether the chat's
``search_products`` fuses the two (the toolbox's ``fused`` path) is not a guess or a flag: it is
measured on the dataset's dev split by ``shopagent eval choose-search`` (``evals.choose_search``),
and the measurement is kept beside the dataset's indexes as a small record: which search, the
paired NDCG@10 difference with its confidence interval, the split, how many queries, when and
by which command. The chat reads it at start and shows it in one line (``SearchChoice.line``).

The rule, one place (``decided_search``): concepts are fused in only when the whole interval
lies above 0. A record whose search disagrees with its own interval is refused, so the line the
chat shows ("chosen on dev: ...") is always what the numbers say.

No record means keywords only. A damaged record is ignored with a one-line warning
(``chat_search``), never a crash: the chat then searches as it would without one. Written
atomically (``tools.atomic_write``), so a reader never sees half a record.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from tools.atomic_write import write_text
from tools.errors import BadInput
from tools.settings.config import Settings

#: The record, in the dataset's index folder (``Settings.index_dir``).
SEARCH_CHOICE_FILE = "search-choice.json"
#: The chat's ``search_products``: keywords alone, or keywords fused with concepts (RRF).
KEYWORDS = "keywords"
FUSED = "keywords+concepts"
SEARCHES = (KEYWORDS, FUSED)
SearchMode = Literal["keywords", "keywords+concepts"]
#: The metric the choice is made on.
METRIC = "ndcg@10"
#: A record larger than this is not one this module wrote.
MAX_BYTES = 64 * 1024
VERSION = 1


class BadSearchChoice(BadInput):
    """A search choice record that cannot be used; the message says which file and why."""


def decided_search(ci_low: float) -> SearchMode:
    """Concepts are fused in only when the paired interval of (fused − keywords) lies above 0:
    a change the data cannot tell from noise, or a loss, keeps the keyword search."""
    return FUSED if ci_low > 0 else KEYWORDS


@dataclass(frozen=True, slots=True)
class SearchChoice:
    """One dataset's choice and the measurement that made it."""

    dataset: str
    search: SearchMode
    split: str
    #: Queries both runs answered (the paired comparison's size).
    queries: int
    #: Mean ``METRIC`` of the keyword search (the ``copy`` strategy) and of the fused one
    #: (``fused``), their paired difference and its interval at ``confidence``.
    keywords: float
    fused: float
    delta: float
    ci_low: float
    ci_high: float
    confidence: float
    wins: int
    ties: int
    losses: int
    #: When it was measured (UTC, ISO 8601) and the command that did it.
    date: str
    command: str
    metric: str = METRIC
    #: The indexes' build stamp (``manifest.json``) when measured, if known.
    catalog_version: str | None = None
    version: int = VERSION

    @property
    def fuses_concepts(self) -> bool:
        return self.search == FUSED

    def line(self) -> str:
        """What the chat shows: the search, and the dev numbers that chose it."""
        numbers = (
            f"{self.metric.upper()} {self.delta:+.3f}, "
            f"{self.confidence:.0%} CI [{self.ci_low:+.3f}, {self.ci_high:+.3f}]"
        )
        where = f"chosen on {self.dataset} {self.split}, {self.queries:,} queries"
        if self.fuses_concepts:
            return f"search: keywords + concepts ({where}: {numbers})"
        return f"search: keywords ({where}: concepts {numbers})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, dataset: str) -> SearchChoice:
        """A checked record; ``ValueError`` says what is wrong (``read_search_choice`` adds
        the file)."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown keys {unknown}")
        if data.get("version") != VERSION:
            raise ValueError(f"version must be {VERSION}, got {data.get('version')!r}")
        choice = cls(
            dataset=_text(data, "dataset"),
            search=_search(data),
            split=_text(data, "split"),
            queries=_count(data, "queries", minimum=1),
            keywords=_unit(data, "keywords"),
            fused=_unit(data, "fused"),
            delta=_number(data, "delta", -1.0, 1.0),
            ci_low=_number(data, "ci_low", -1.0, 1.0),
            ci_high=_number(data, "ci_high", -1.0, 1.0),
            confidence=_number(data, "confidence", 0.5, 0.999),
            wins=_count(data, "wins"),
            ties=_count(data, "ties"),
            losses=_count(data, "losses"),
            date=_date(data),
            command=_text(data, "command"),
            metric=_metric(data),
            catalog_version=_optional_text(data, "catalog_version"),
        )
        if choice.dataset != dataset:
            raise ValueError(f"it is for dataset {choice.dataset!r}, not {dataset!r}")
        if choice.ci_low > choice.ci_high:
            raise ValueError(f"ci_low {choice.ci_low} is above ci_high {choice.ci_high}")
        if choice.wins + choice.ties + choice.losses != choice.queries:
            raise ValueError("wins, ties and losses do not add up to queries")
        if choice.search != decided_search(choice.ci_low):
            raise ValueError(
                f"search {choice.search!r} disagrees with its interval "
                f"[{choice.ci_low:+.4f}, {choice.ci_high:+.4f}]"
            )
        return choice


def search_choice_path(settings: Settings, dataset: str) -> Path:
    return settings.index_dir(dataset) / SEARCH_CHOICE_FILE


def write_search_choice(settings: Settings, choice: SearchChoice) -> Path:
    """Replace the dataset's record, atomically; returns its path."""
    path = search_choice_path(settings, choice.dataset)
    SearchChoice.from_dict(choice.to_dict(), choice.dataset)  # never write what cannot be read
    write_text(path, json.dumps(choice.to_dict(), indent=2, sort_keys=True) + "\n")
    return path


def read_search_choice(settings: Settings, dataset: str) -> SearchChoice | None:
    """The dataset's record; None when there is none; ``BadSearchChoice`` (one line naming
    the file) when it cannot be read or used."""
    path = search_choice_path(settings, dataset)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise BadSearchChoice(f"{path}: larger than {MAX_BYTES:,} bytes, not a search choice")
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise BadSearchChoice(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        data = json.loads(raw.decode("utf-8"))
        return SearchChoice.from_dict(data, dataset)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        detail = " ".join(str(error).split())[:200] or type(error).__name__
        raise BadSearchChoice(f"{path}: {detail}") from None


@dataclass(frozen=True, slots=True)
class ChatSearch:
    """What the chat does with a dataset's record: whether to fuse, the line it shows, and a
    warning when a damaged record was ignored."""

    fuse_concepts: bool
    line: str
    warning: str | None = None
    choice: SearchChoice | None = None


def chat_search(settings: Settings, dataset: str) -> ChatSearch:
    """The chat's search for ``dataset``, from its record; never raises for the record."""
    try:
        choice = read_search_choice(settings, dataset)
    except BadSearchChoice as error:
        warning = (
            f"ignored the search choice ({error}); searching by keywords: "
            f"`shopagent eval choose-search --dataset {dataset}` writes it again"
        )
        return ChatSearch(False, f"search: {KEYWORDS}", warning)
    if choice is None:
        return ChatSearch(False, f"search: {KEYWORDS}")
    return ChatSearch(choice.fuses_concepts, choice.line(), choice=choice)


def utc_now() -> str:
    """The record's ``date``: now, UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- checks -----------------------------------------------------------------------------------


def _value(data: dict[str, Any], key: str) -> Any:
    if key not in data:
        raise ValueError(f"{key} is missing")
    return data[key]


def _text(data: dict[str, Any], key: str) -> str:
    value = _value(data, key)
    if not isinstance(value, str) or not value.strip() or len(value) > 1000:
        raise ValueError(f"{key} must be a non-empty string")
    return value


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    return None if data.get(key) is None else _text(data, key)


def _search(data: dict[str, Any]) -> SearchMode:
    value = _value(data, "search")
    if value not in SEARCHES:
        raise ValueError(f"search must be one of {list(SEARCHES)}, got {value!r}")
    return value  # type: ignore[no-any-return]


def _metric(data: dict[str, Any]) -> str:
    value = data.get("metric", METRIC)
    if value != METRIC:
        raise ValueError(f"metric must be {METRIC!r}, got {value!r}")
    return METRIC


def _number(data: dict[str, Any], key: str, low: float, high: float) -> float:
    value = _value(data, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{key} must be between {low} and {high}, got {value!r}")
    return float(value)


def _unit(data: dict[str, Any], key: str) -> float:
    return _number(data, key, 0.0, 1.0)


def _count(data: dict[str, Any], key: str, minimum: int = 0) -> int:
    value = _value(data, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key} must be a whole number of at least {minimum}")
    return value


def _date(data: dict[str, Any]) -> str:
    value = _text(data, "date")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"date must be an ISO 8601 time, got {value!r}") from None
    return value
