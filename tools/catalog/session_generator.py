"""Generated sessions: chatty conversations around a dataset's judged queries.

The query writer must turn a conversation into the search that finds the product; these
sessions make conversations whose answer is known. Each stands for one judged query, and the
query's words are all in its turns (split across turns, or with at most one letter wrong),
never paraphrased: the judged query stays recoverable, so a miss is the writer's, not the
script's. Kinds:

- ``wordy``: one chatty message around the query ("hey, do you carry pipe bender? thx").
- ``product_then_modifiers``: the head product noun phrase first ("ceiling fan"), its
  modifiers in a second message ("outdoor with light please"); queries of two words or more.
- ``restart``: a message for another query of the same split, then a restart for this one
  ("actually forget that, I need ceiling fan").
- ``refinement``: the query, then a budget above the price of the query's most relevant
  judged product, or that product's brand, so the constraint never excludes it; only where
  that product has a price or a brand (every Chorus product has both; Home Depot's have
  neither, so Home Depot gets no refinement sessions).
- ``clean``: the query itself as one message, as a keyword search is typed (not among the
  default kinds): a writer must still copy what should be copied, and on these sessions the
  ``last`` strategy is exactly ``copy``.

Wording comes from two disjoint template families (``session_phrasings``): ``seen`` for the
train split and ``held-out`` for evaluation; training is refused the held-out family. Each
session is drawn from its own random stream, seeded by (seed, dataset, split, query id, kind,
number): the same arguments give the same sessions, and adding a query changes no other
session (a restart's other query is drawn from the queries given, so it depends on them).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tools.catalog.datasets import load_dataset
from tools.catalog.judgments import Judgments, Query
from tools.catalog.product import Product
from tools.catalog.session_phrasings import FAMILIES, Phrasings
from tools.catalog.sessions import Session
from tools.catalog.splits import normalise_query, split_queries
from tools.errors import BadInput
from tools.settings.config import Settings

KINDS = ("wordy", "product_then_modifiers", "restart", "refinement", "clean")
#: The kinds a sessions file gets unless others are asked for: the conversational ones.
DEFAULT_KINDS = KINDS[:4]
PHRASINGS = ("seen", "held-out", "all")
TRAIN_SPLIT = "train"
MAX_PER_QUERY = 100

#: How often a message gets a greeting or a closer, a filler word a typo, a query word a typo.
GREETING_RATE = 0.5
CLOSER_RATE = 0.4
FILLER_TYPO_RATE = 0.12
QUERY_TYPO_RATE = 0.08
#: Case of a whole message: as written, lower case, or a capital first letter.
CASE_WEIGHTS = (("as-is", 0.55), ("lower", 0.35), ("capital", 0.10))

#: Words that start a query's trailing modifiers ("fan *with* light", "cover *for* grill").
CONNECTORS = frozenset({"with", "without", "w/", "for"})
_NOT_HEAD = frozenset({"a", "an", "the", "and", "or", "of", "in", "on", "to", "x", *CONNECTORS})
_PUNCTUATION = ".,;:!?'\"()"
_RESTART_TRIES = 20
#: Budget rounding: below each price, budgets are multiples of the step (above them all, 1000).
_BUDGET_STEPS = ((20, 5), (100, 10), (500, 50), (2000, 100), (10_000, 500))
#: A slot (skipped) or a template word long enough for a typo.
_TEMPLATE_WORD = re.compile(r"\{\w*\}|[A-Za-z]{4,}")


def default_phrasings(split: str) -> str:
    """The family a split is phrased with unless asked otherwise: seen for train, else held-out."""
    return "seen" if split == TRAIN_SPLIT else "held-out"


def check_phrasings(split: str, phrasings: str) -> tuple[str, ...]:
    """The families ``phrasings`` allows for ``split``; training never gets the held-out one."""
    if phrasings not in PHRASINGS:
        raise BadInput(f"unknown phrasings {phrasings!r}; choose one of {list(PHRASINGS)}")
    if split == TRAIN_SPLIT and phrasings != "seen":
        raise BadInput(
            f"the train split takes only --phrasings seen, not {phrasings!r}: training must "
            "never see the held-out templates that evaluation is phrased with"
        )
    return tuple(FAMILIES) if phrasings == "all" else (phrasings,)


def generate_sessions(
    dataset_name: str,
    judgments: Judgments,
    queries: Sequence[Query],
    products_by_id: Mapping[str, Product] | None,
    *,
    split: str,
    phrasings: str,
    seed: int,
    per_query: int = 1,
    kinds: Sequence[str] = DEFAULT_KINDS,
) -> list[Session]:
    """``per_query`` sessions of each kind that applies, for each query, query by query.

    ``products_by_id`` needs only the queries' judged products; without it (``None``) there
    are no refinement sessions. Session ids are ``dataset-split-queryid-kind-n``.
    """
    families = check_phrasings(split, phrasings)
    if not 1 <= per_query <= MAX_PER_QUERY:
        raise BadInput(f"per-query must be between 1 and {MAX_PER_QUERY}, got {per_query}")
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise BadInput(f"unknown session kind {unknown[0]!r}; choose from {list(KINDS)}")
    products = products_by_id or {}
    sessions: list[Session] = []
    for query in queries:
        for kind in kinds:
            for number in range(per_query):
                rng = random.Random(f"{seed}/{dataset_name}/{split}/{query.id}/{kind}/{number}")
                family = FAMILIES[rng.choice(families)]
                made = _MAKERS[kind](_Voice(rng, family), query, judgments, queries, products)
                if made is None:
                    continue
                turns, details = made
                extra = {"kind": kind, "phrasing": family.name, "split": split}
                extra |= {"dataset": dataset_name, **details}
                session_id = f"{dataset_name}-{split}-{query.id}-{kind}-{number}"
                sessions.append(Session(session_id, turns, query.id, query.text, extra))
    return sessions


def sessions_for_split(
    dataset_name: str,
    settings: Settings,
    *,
    split: str,
    phrasings: str | None = None,
    seed: int = 0,
    per_query: int = 1,
    limit: int | None = None,
    kinds: Sequence[str] = DEFAULT_KINDS,
) -> list[Session]:
    """Sessions for the queries of one split of a dataset (its first ``limit`` queries):
    what ``shopagent data sessions`` writes."""
    phrasings = phrasings or default_phrasings(split)
    check_phrasings(split, phrasings)
    if limit is not None and limit < 1:
        raise BadInput(f"limit must be at least 1, got {limit}")
    dataset = load_dataset(dataset_name, settings)
    judgments = dataset.judgments()
    queries = split_queries(judgments, dataset_name, split)[:limit]
    if not queries:
        raise BadInput(f"{dataset_name} {split}: no query with a positive judgment")
    wanted = {pid for q in queries for pid, gain in judgments.gains(q.id).items() if gain > 0}
    products = {p.id: p for p in dataset.products() if p.id in wanted}
    return generate_sessions(
        dataset_name,
        judgments,
        queries,
        products,
        split=split,
        phrasings=phrasings,
        seed=seed,
        per_query=per_query,
        kinds=kinds,
    )


# -- the kinds -------------------------------------------------------------------------------

Made = tuple[tuple[str, ...], dict[str, Any]] | None


def _clean(voice: _Voice, query: Query, *_: object) -> Made:
    return (query.text,), {}


def _wordy(voice: _Voice, query: Query, *_: object) -> Made:
    return (voice.chatty(voice.wordy(voice.query_text(query))),), {}


def _product_then_modifiers(voice: _Voice, query: Query, *_: object) -> Made:
    words = voice.query_text(query).split()
    parts = split_head(words)
    if parts is None:
        return None
    head, modifiers = parts
    first = voice.chatty(voice.fill(voice.pick("product"), head=" ".join(head)), closer=0)
    second = voice.chatty(voice.fill(voice.pick("modifiers"), mods=" ".join(modifiers)), greet=0)
    return (first, second), {}


def _restart(
    voice: _Voice, query: Query, judgments: Judgments, queries: Sequence[Query], *_: object
) -> Made:
    other = _other_query(voice.rng, query, judgments, queries)
    if other is None:
        return None
    first = voice.chatty(voice.wordy(other.text))
    second = voice.chatty(voice.fill(voice.pick("restart"), q=voice.query_text(query)), greet=0)
    return (first, second), {"restart_from": other.text}


def _refinement(
    voice: _Voice,
    query: Query,
    judgments: Judgments,
    queries: Sequence[Query],
    products: Mapping[str, Product],
) -> Made:
    best = most_relevant(query, judgments, products)
    if best is None:
        return None
    options: list[tuple[str, dict[str, Any], dict[str, str]]] = []
    if best.price is not None:
        budget = budget_above(best.price)
        options.append(("budget", {"max_price": budget}, {"price": str(budget)}))
    if best.brand.strip():
        brand = " ".join(best.brand.split())
        options.append(("brand", {"brand": brand}, {"brand": brand}))
    if not options:
        return None
    table, constraint, slots = voice.rng.choice(options)
    first = voice.chatty(voice.wordy(voice.query_text(query)))
    second = voice.chatty(voice.fill(voice.pick(table), **slots), greet=0)
    return (first, second), {"constraint": constraint, "product_id": best.id}


_MAKERS = {
    "clean": _clean,
    "wordy": _wordy,
    "product_then_modifiers": _product_then_modifiers,
    "restart": _restart,
    "refinement": _refinement,
}


# -- the parts -------------------------------------------------------------------------------


def split_head(words: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """A query's head noun phrase and its modifiers, every word in one of the two; ``None``
    for a one-word query.

    English product queries end their noun phrase with the head noun ("outdoor ceiling *fan*
    with light"): the head is the last word-like word before the first connector ("with",
    "for"), with the word before it when that leaves a modifier ("ceiling fan"); the rest, in
    order, are the modifiers ("outdoor with light").
    """
    if len(words) < 2:
        return None
    cut = next((i for i in range(1, len(words)) if words[i].lower() in CONNECTORS), len(words))
    nounish = [i for i in range(cut) if _nounish(words[i])]
    last = nounish[-1] if nounish else cut - 1
    size = 2 if len(words) >= 3 and last >= 1 and _nounish(words[last - 1]) else 1
    start = last - size + 1
    return list(words[start : last + 1]), [*words[:start], *words[last + 1 :]]


def most_relevant(
    query: Query, judgments: Judgments, products: Mapping[str, Product]
) -> Product | None:
    """The query's judged product with the highest gain (the lowest id among equals)."""
    judged = [
        (gain, pid)
        for pid, gain in judgments.gains(query.id).items()
        if gain > 0 and pid in products
    ]
    if not judged:
        return None
    top = max(gain for gain, _ in judged)
    return products[min(pid for gain, pid in judged if gain == top)]


def budget_above(price: Decimal) -> int:
    """A round budget strictly above ``price``: 30 for 29.99, 40 for 30, 300 for 279."""
    step = next((step for below, step in _BUDGET_STEPS if price < below), 1000)
    return int((price // step + 1) * step)


def one_letter_typo(word: str, rng: random.Random) -> str:
    """``word`` with two neighbouring inner letters swapped or one inner letter dropped (the
    first and last letters stay, as in most real typos); words under 4 letters unchanged."""
    if len(word) < 4:
        return word
    swaps = [i for i in range(1, len(word) - 2) if word[i] != word[i + 1]]
    if swaps and rng.random() < 0.5:
        i = rng.choice(swaps)
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1 :]


def _nounish(word: str) -> bool:
    bare = word.strip(_PUNCTUATION)
    return len(bare) >= 2 and bare.isalpha() and bare.lower() not in _NOT_HEAD


def _other_query(
    rng: random.Random, query: Query, judgments: Judgments, queries: Sequence[Query]
) -> Query | None:
    """Another query of the same list for a restart to drop: a different text, preferably
    sharing no word and no relevant product with ``query``; ``None`` when there is none."""
    own_text = normalise_query(query.text)
    own_words = set(own_text.split())
    own_products = {pid for pid, gain in judgments.gains(query.id).items() if gain > 0}
    fallback = None
    for _ in range(_RESTART_TRIES):
        other = queries[rng.randrange(len(queries))]
        text = normalise_query(other.text)
        if text == own_text:
            continue
        fallback = fallback or other
        shares_product = any(
            gain > 0 and pid in own_products for pid, gain in judgments.gains(other.id).items()
        )
        if not shares_product and not own_words & set(text.split()):
            return other
    if fallback is None:
        fallback = next((q for q in queries if normalise_query(q.text) != own_text), None)
    return fallback


@dataclass(slots=True)
class _Voice:
    """One session's wording: its random stream, its family, and the typos it may still make
    (at most one filler word and one query word per session)."""

    rng: random.Random
    family: Phrasings
    filler_typo_left: bool = True
    _query: str | None = None

    def pick(self, table: str) -> str:
        return self.rng.choice(self.family.tables()[table])

    def query_text(self, query: Query) -> str:
        """The query as this session writes it: verbatim, or once in a while with one letter
        wrong in a word of five letters or more (the same everywhere in the session)."""
        if self._query is None:
            words = query.text.split()
            long = [i for i, word in enumerate(words) if len(word) >= 5 and word.isalpha()]
            if long and self.rng.random() < QUERY_TYPO_RATE:
                i = self.rng.choice(long)
                words[i] = one_letter_typo(words[i], self.rng)
            self._query = " ".join(words)
        return self._query

    def wordy(self, text: str) -> str:
        return self.fill(self.pick("wordy"), q=text, ctx=self.pick("contexts"))

    def fill(self, template: str, **slots: str) -> str:
        """A template with its slots filled; a filler word (never a slot) may get a typo."""
        if self.filler_typo_left and self.rng.random() < FILLER_TYPO_RATE:
            template = self._filler_typo(template)
        return template.format(**slots)

    def chatty(
        self, body: str, *, greet: float = GREETING_RATE, closer: float = CLOSER_RATE
    ) -> str:
        """``body`` with now and then a greeting before and a closer after, in some case."""
        text = body
        if self.rng.random() < greet:
            greeting = self.pick("greetings")
            text = f"{greeting} {text}" if greeting[-1] in "!?" else f"{greeting}, {text}"
        if self.rng.random() < closer:
            ending = self.pick("closers")
            text = f"{text}, {ending}" if text[-1].isalnum() else f"{text} {ending}"
        style = self.rng.choices(
            [name for name, _ in CASE_WEIGHTS], [weight for _, weight in CASE_WEIGHTS]
        )[0]
        if style == "lower":
            return text.lower()
        if style == "capital":
            return text[:1].upper() + text[1:]
        return text

    def _filler_typo(self, template: str) -> str:
        """One word of four letters or more outside the slots, with one letter wrong."""
        words = [m.span() for m in _TEMPLATE_WORD.finditer(template) if m.group()[0] != "{"]
        if not words:
            return template
        start, end = self.rng.choice(words)
        self.filler_typo_left = False
        return template[:start] + one_letter_typo(template[start:end], self.rng) + template[end:]
