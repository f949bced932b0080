"""Deterministic query splits: a query's split depends on its text alone, not on other data.

Each query text is normalised (lower case, single spaces) and hashed with SHA-256 together
with ``SPLIT_SALT``; the first 8 bytes, read as a fraction in [0, 1), are the query's
*bucket*. Buckets never change when queries are added or removed, so neither does a
query's region. Only queries with at least one positive judgment are placed in a split
(a ranking metric cannot score the others, and a reward built on it is always 0).

Home Depot (``train`` / ``dev`` / ``test``):

- ``test``: bucket in [0.00, 0.10), every such query;
- ``dev``: the 1,000 queries of bucket [0.10, 0.25) with the lowest buckets (``DEV_SIZE``);
  the region holds about 1,500 scorable queries, so dev is always full;
- ``train``: bucket in [0.25, 1.00), every such query.

The rest of the dev region belongs to no split. That keeps the train/dev boundary
independent of the data: a query in train today can never be in dev tomorrow, and adding
queries can at most push a dev query out of dev, never into train.

Chorus and every other dataset (``all`` / ``dev`` / ``test``): ``all`` is every query with a
positive judgment; ``dev`` is bucket < 0.5 and ``test`` the rest (halves by hash, so close
to but not exactly equal in size).

Changing ``SPLIT_SALT`` reshuffles every split: do it only with a new version suffix.
"""

from __future__ import annotations

import hashlib

from tools.catalog.judgments import Judgments, Query
from tools.errors import BadInput

SPLIT_SALT = "shopagent-splits-v1"
DEV_SIZE = 1000

#: Home Depot regions as [low, high) bucket ranges.
HOMEDEPOT_REGIONS: dict[str, tuple[float, float]] = {
    "test": (0.0, 0.10),
    "dev": (0.10, 0.25),
    "train": (0.25, 1.0),
}
HALVES: dict[str, tuple[float, float]] = {"dev": (0.0, 0.5), "test": (0.5, 1.0)}

HOMEDEPOT_SPLITS = ("train", "dev", "test")
DEFAULT_SPLITS = ("all", "dev", "test")


def normalise_query(text: str) -> str:
    return " ".join(text.lower().split())


def bucket(text: str, salt: str = SPLIT_SALT) -> float:
    """A query text's fixed position in [0, 1), uniform over texts."""
    digest = hashlib.sha256(f"{salt}\x00{normalise_query(text)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_names(dataset: str) -> tuple[str, ...]:
    return HOMEDEPOT_SPLITS if dataset == "homedepot" else DEFAULT_SPLITS


def split_queries(judgments: Judgments, dataset: str, split: str) -> list[Query]:
    """The scorable queries of one split, in bucket order (so ``--limit N`` is a stable prefix)."""
    names = split_names(dataset)
    if split not in names:
        raise BadInput(f"unknown split {split!r} for {dataset}; choose one of {list(names)}")
    scorable = sorted(judgments.with_positive(), key=lambda q: (bucket(q.text), q.id))
    if split == "all":
        return scorable
    regions = HOMEDEPOT_REGIONS if dataset == "homedepot" else HALVES
    low, high = regions[split]
    chosen = [q for q in scorable if low <= bucket(q.text) < high]
    if dataset == "homedepot" and split == "dev":
        return chosen[:DEV_SIZE]
    return chosen


def select_split(
    judgments: Judgments, dataset: str, split: str, limit: int | None = None
) -> Judgments:
    """The judgments restricted to one split (the first ``limit`` queries of it, if given).

    A split with no query to score is refused here, once, for every command that runs one
    (eval, drift, collect): nothing could be measured or learned from it.
    """
    if limit is not None and limit < 1:
        raise BadInput(f"limit must be at least 1, got {limit}")
    queries = split_queries(judgments, dataset, split)
    if not queries:
        raise BadInput(f"{dataset} {split}: no query with a positive judgment")
    return judgments.subset(q.id for q in queries[:limit])
