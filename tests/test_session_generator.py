"""Generated sessions: deterministic, every kind, the query recoverable, families kept apart.

The generator's promise to evaluation is that the judged query can be read back out of every
conversation (all its words are there, at most one with a typo), that a refinement never rules
out the product the query is judged by, and that training never sees the wording evaluation
uses. The command is driven through typer's CliRunner on the real Home Depot data and on a tiny
imported catalog that has brands and prices.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

import cli
from tools.catalog import session_generator
from tools.catalog.datasets import import_dataset, load_dataset, resolve_settings
from tools.catalog.judgments import Judgments, Query
from tools.catalog.product import Product
from tools.catalog.session_generator import (
    DEFAULT_KINDS,
    KINDS,
    budget_above,
    default_phrasings,
    generate_sessions,
    most_relevant,
    one_letter_typo,
    split_head,
)
from tools.catalog.session_phrasings import FAMILIES, HELD_OUT, SEEN, Phrasings
from tools.catalog.sessions import Session, read_sessions
from tools.catalog.splits import normalise_query, split_queries
from tools.errors import BadInput
from tools.settings.config import Settings, load_settings

Tiny = tuple[Judgments, list[Query], dict[str, Product]]

PRODUCTS = [
    Product("p1", "Logitech wireless mouse", brand="Logitech", price=Decimal("29.99")),
    Product("p2", "Razer gaming mouse", brand="Razer", price=Decimal("49.99")),
    Product("p3", "Mouse pad extended"),
    Product("k1", "Corsair mechanical gaming keyboard", brand="Corsair", price=Decimal("129.50")),
    Product("h1", "Sony noise cancelling headphones", brand="Sony", price=Decimal("279")),
    Product("t1", "Anker usb charger", price=Decimal("20")),
]
JUDGED = {
    "wireless mouse": {"p1": 3, "p2": 1},
    "gaming mouse": {"p2": 3, "p1": 3, "k1": 0},
    "mechanical gaming keyboard": {"k1": 2},
    "noise cancelling headphones with microphone": {"h1": 3},
    "mouse pad": {"p3": 2},
    "usb charger": {"t1": 1},
}


@pytest.fixture(scope="module")
def tiny() -> Tiny:
    judgments = Judgments()
    for text, gains in JUDGED.items():
        for pid, gain in gains.items():
            judgments.add(Query.from_text(text), pid, gain)
    return judgments, list(judgments.queries.values()), {p.id: p for p in PRODUCTS}


@pytest.fixture(scope="module")
def settings(shared_data: Path) -> Settings:
    return resolve_settings(shared_data)


@pytest.fixture(scope="module")
def homedepot_dev(settings: Settings) -> tuple[Judgments, list[Query]]:
    judgments = load_dataset("homedepot", settings).judgments()
    return judgments, split_queries(judgments, "homedepot", "dev")[:150]


def generate(tiny: Tiny, **options: object) -> list[Session]:
    judgments, queries, products = tiny
    arguments = {"split": "dev", "phrasings": "held-out", "seed": 7} | options
    return generate_sessions("tiny", judgments, queries, products, **arguments)


# -- determinism and coverage ----------------------------------------------------------------


def test_the_same_seed_gives_the_same_sessions_and_another_seed_others(tiny: Tiny) -> None:
    first = generate(tiny, phrasings="all", per_query=3)
    assert first == generate(tiny, phrasings="all", per_query=3)
    other = generate(tiny, phrasings="all", per_query=3, seed=8)
    assert [s.id for s in other] == [s.id for s in first]
    assert [s.turns for s in other] != [s.turns for s in first]


def test_a_query_s_sessions_do_not_depend_on_the_queries_after_it(tiny: Tiny) -> None:
    judgments, queries, products = tiny
    kinds = ("wordy", "product_then_modifiers", "refinement")  # a restart draws from the list
    whole = generate(tiny, kinds=kinds)
    part = generate((judgments, queries[:2], products), kinds=kinds)
    assert part == [s for s in whole if s.query_id in {q.id for q in queries[:2]}]


def test_every_kind_is_generated_with_its_fields(tiny: Tiny) -> None:
    sessions = generate(tiny, per_query=2)
    by_kind = {kind: [s for s in sessions if s.kind == kind] for kind in DEFAULT_KINDS}
    assert all(by_kind.values()), {kind: len(group) for kind, group in by_kind.items()}
    assert len({s.id for s in sessions}) == len(sessions)
    for session in sessions:
        assert {"kind", "phrasing", "split", "dataset"} <= set(session.extra)
        assert (session.extra["split"], session.extra["dataset"]) == ("dev", "tiny")
        assert session.extra["phrasing"] == "held-out"
        assert len(session.turns) == (1 if session.kind == "wordy" else 2)
    # two-word-or-more queries only; products with neither brand nor price give no refinement
    assert "mouse pad" in {s.query_text for s in by_kind["product_then_modifiers"]}
    assert {s.query_text for s in by_kind["refinement"]} == set(JUDGED) - {"mouse pad"}


def test_a_restart_first_asks_for_another_query_of_the_list(tiny: Tiny) -> None:
    texts = set(JUDGED)
    for session in generate(tiny, kinds=("restart",), per_query=3):
        other = session.extra["restart_from"]
        assert other in texts
        assert normalise_query(other) != normalise_query(session.query_text)
        assert other.lower() in session.turns[0].lower()


def test_one_query_alone_has_no_restart(tiny: Tiny) -> None:
    judgments, queries, products = tiny
    alone = generate((judgments, queries[:1], products))
    assert alone
    assert "restart" not in {s.kind for s in alone}


# -- the query is recoverable ----------------------------------------------------------------


def _one_edit_variants(word: str) -> set[str]:
    drops = {word[:i] + word[i + 1 :] for i in range(len(word))}
    swaps = {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)}
    return drops | swaps


def assert_query_words_present(session: Session) -> None:
    """Every word of the query in the turns; at most one, of 5+ letters, one letter off."""
    text = " ".join(session.turns).lower()
    missing = [w for w in session.query_text.lower().split() if w not in text]
    assert len(missing) <= 1, (session.query_text, session.turns)
    for word in missing:
        assert len(word) >= 5, (word, session.turns)
        assert any(v in text for v in _one_edit_variants(word)), (word, session.turns)


@pytest.mark.parametrize("phrasings", ["seen", "held-out"])
def test_every_query_word_is_in_the_turns(
    homedepot_dev: tuple[Judgments, list[Query]], phrasings: str
) -> None:
    judgments, queries = homedepot_dev
    sessions = generate_sessions(
        "homedepot", judgments, queries, None, split="dev", phrasings=phrasings, seed=3, per_query=2
    )
    assert {s.kind for s in sessions} == {"wordy", "product_then_modifiers", "restart"}
    for session in sessions:
        assert_query_words_present(session)


def test_a_query_typo_changes_one_letter_of_one_long_word(
    tiny: Tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_generator, "QUERY_TYPO_RATE", 1.0)
    sessions = generate(tiny, per_query=3)
    typos = 0
    for session in sessions:
        assert_query_words_present(session)
        text = " ".join(session.turns).lower()
        typos += any(w not in text for w in session.query_text.split())
    assert typos >= len(sessions) // 2  # the check above can see a typo, and allows only one


def test_a_typo_is_one_inner_letter_swapped_or_dropped() -> None:
    import random

    rng = random.Random(1)
    for word in ("bender", "vanity", "cancelling", "aabb", "porcelain"):
        for _ in range(30):
            typo = one_letter_typo(word, rng)
            assert typo != word
            assert typo in _one_edit_variants(word)
            assert (typo[0], typo[-1]) == (word[0], word[-1])
    assert one_letter_typo("fan", rng) == "fan"


@pytest.mark.parametrize(
    ("query", "head", "modifiers"),
    [
        ("outdoor ceiling fan with light", "ceiling fan", "outdoor with light"),
        ("pipe bender", "bender", "pipe"),
        ("decorative louvers 102", "decorative louvers", "102"),
        ("19x48 vanity bottom", "vanity bottom", "19x48"),
        ("cover for grill", "cover", "for grill"),
        ("led 60w bulb w/ dimmer", "bulb", "led 60w w/ dimmer"),
        ("3/4 x 3/4", "3/4", "3/4 x"),
    ],
)
def test_the_head_is_the_last_nouns_before_a_connector(
    query: str, head: str, modifiers: str
) -> None:
    parts = split_head(query.split())
    assert parts is not None
    assert (" ".join(parts[0]), " ".join(parts[1])) == (head, modifiers)
    assert sorted(parts[0] + parts[1]) == sorted(query.split())


def test_a_one_word_query_has_no_head_split() -> None:
    assert split_head(["porcelain"]) is None


# -- refinement keeps the product ------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "budget"),
    [("29.99", 30), ("30", 40), ("45", 50), ("0", 5), ("19.99", 20), ("99.5", 100), ("279", 300),
     ("1299", 1300), ("9999.99", 10000), ("25000", 26000)],
)  # fmt: skip
def test_a_budget_is_a_round_number_above_the_price(price: str, budget: int) -> None:
    assert budget_above(Decimal(price)) == budget


def test_the_most_relevant_product_is_the_top_gain_then_the_lowest_id(tiny: Tiny) -> None:
    judgments, queries, products = tiny
    by_text = {q.text: q for q in queries}
    assert most_relevant(by_text["gaming mouse"], judgments, products) == products["p1"]
    assert most_relevant(by_text["wireless mouse"], judgments, products) == products["p1"]
    assert most_relevant(by_text["wireless mouse"], judgments, {}) is None


def assert_constraint_keeps(
    session: Session, judgments: Judgments, products: Mapping[str, Product]
) -> None:
    query = judgments.queries[session.query_id]
    best = products[session.extra["product_id"]]
    assert best == most_relevant(query, judgments, products)
    constraint = session.extra["constraint"]
    said = session.turns[1].lower()
    if "max_price" in constraint:
        assert best.price < constraint["max_price"]
        assert f"${constraint['max_price']}" in said
    else:
        assert constraint["brand"] == " ".join(best.brand.split())
        assert constraint["brand"].lower() in said  # a typo never touches a slot


def test_refinement_never_excludes_the_most_relevant_product(tiny: Tiny) -> None:
    judgments, _, products = tiny
    sessions = generate(tiny, kinds=("refinement",), per_query=6, phrasings="all")
    assert {"max_price", "brand"} == {key for s in sessions for key in s.extra["constraint"]}
    for session in sessions:
        assert_constraint_keeps(session, judgments, products)


def test_refinement_on_chorus_keeps_the_product(settings: Settings) -> None:
    dataset = load_dataset("chorus", settings)
    judgments = dataset.judgments()
    queries = split_queries(judgments, "chorus", "test")
    wanted = {pid for q in queries for pid in judgments.gains(q.id)}
    products = {p.id: p for p in dataset.products() if p.id in wanted}
    sessions = generate_sessions(
        "chorus", judgments, queries, products, split="test", phrasings="held-out", seed=0
    )
    refinements = [s for s in sessions if s.kind == "refinement"]
    assert len(refinements) == len(queries)  # every Chorus product has a brand and a price
    for session in refinements:
        assert_constraint_keeps(session, judgments, products)
    for session in sessions:
        assert_query_words_present(session)


# -- the two families ------------------------------------------------------------------------


def test_the_seen_and_held_out_families_share_no_template() -> None:
    seen, held_out = SEEN.tables(), HELD_OUT.tables()
    assert seen.keys() == held_out.keys()
    for table in seen:
        assert len(seen[table]) >= 5 and len(held_out[table]) >= 5, table
        shared = {t.lower() for t in seen[table]} & {t.lower() for t in held_out[table]}
        assert not shared, (table, shared)
    everything_seen = {t.lower() for table in seen.values() for t in table}
    everything_held_out = {t.lower() for table in held_out.values() for t in table}
    assert not everything_seen & everything_held_out
    assert len(SEEN.wordy) >= 12 and len(HELD_OUT.wordy) >= 12


@pytest.mark.parametrize("table", ["greetings", "closers"])
def test_greetings_and_closers_share_no_word(table: str) -> None:
    def words(family: Phrasings) -> set[str]:
        return {w for t in family.tables()[table] for w in re.findall(r"[a-z']+", t.lower())}

    assert not words(SEEN) & words(HELD_OUT)


BODY_TABLES = ("wordy", "product", "modifiers", "restart", "budget", "brand")


def _template_pattern(family: Phrasings, *, bare_slots: bool = True) -> re.Pattern[str]:
    """A turn of ``family``: greeting?, a body template (slots as ``.+``), closer?; without
    ``bare_slots``, body templates that are a slot alone (they match any text) are left out."""
    tables = family.tables()
    bodies = [
        t
        for name in BODY_TABLES
        for t in tables[name]
        if bare_slots or not re.fullmatch(r"\{\w+\}", t)
    ]
    body = "|".join(re.sub(r"\\\{\w+\\\}", ".+", re.escape(t)) for t in bodies)
    greeting = "|".join(re.escape(t) for t in tables["greetings"])
    closer = "|".join(re.escape(t) for t in tables["closers"])
    return re.compile(rf"(?:(?:{greeting}),? )?(?:{body})(?:,? (?:{closer}))?", re.IGNORECASE)


@pytest.mark.parametrize("family", ["seen", "held-out"])
def test_every_turn_is_worded_by_its_own_family_only(
    tiny: Tiny, monkeypatch: pytest.MonkeyPatch, family: str
) -> None:
    monkeypatch.setattr(session_generator, "FILLER_TYPO_RATE", 0.0)
    own = _template_pattern(FAMILIES[family])
    other = "held-out" if family == "seen" else "seen"
    foreign = _template_pattern(FAMILIES[other], bare_slots=False)
    sessions = generate(tiny, phrasings=family, per_query=5)
    assert {s.extra["phrasing"] for s in sessions} == {family}
    for session in sessions:
        for turn in session.turns:
            assert own.fullmatch(turn), turn
            assert not foreign.fullmatch(turn), turn


def test_all_phrasings_draws_from_both_families(tiny: Tiny) -> None:
    sessions = generate(tiny, phrasings="all", per_query=4)
    assert {s.extra["phrasing"] for s in sessions} == {"seen", "held-out"}


@pytest.mark.parametrize("phrasings", ["held-out", "all"])
def test_the_train_split_refuses_held_out_phrasings(tiny: Tiny, phrasings: str) -> None:
    with pytest.raises(BadInput, match="train split takes only --phrasings seen"):
        generate(tiny, split="train", phrasings=phrasings)
    assert generate(tiny, split="train", phrasings="seen")
    assert (default_phrasings("train"), default_phrasings("dev")) == ("seen", "held-out")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"phrasings": "fancy"}, "unknown phrasings 'fancy'"),
        ({"per_query": 0}, "per-query must be between 1"),
        ({"kinds": ("wordy", "poem")}, "unknown session kind 'poem'"),
    ],
)
def test_bad_options_are_bad_input(tiny: Tiny, options: dict[str, object], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        generate(tiny, **options)


# -- the command -----------------------------------------------------------------------------


@pytest.fixture()
def data_env(shared_data: Path, shopagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHOPAGENT_DATA_DIR", str(shared_data))
    monkeypatch.setenv("COLUMNS", "300")
    return shopagent_home


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli.app, ["data", "sessions", *args])


def test_the_command_writes_homedepot_dev_sessions(data_env: Path, tmp_path: Path) -> None:
    out = tmp_path / "dev.jsonl"
    result = invoke("--dataset", "homedepot", "--split", "dev", "--out", str(out), "--limit", "30")
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") == 1
    judgments = load_dataset("homedepot", load_settings()).judgments()
    read = read_sessions(out, judgments)
    assert read.skipped == []
    counts = {kind: sum(s.kind == kind for s in read.sessions) for kind in DEFAULT_KINDS}
    assert counts["wordy"] == counts["restart"] == 30
    assert counts["refinement"] == 0  # Home Depot products have neither brand nor price
    summary = f"{len(read.sessions)} sessions (wordy 30, product_then_modifiers "
    assert result.output.startswith(summary)
    assert "held-out phrasings" in result.output and str(out) in result.output
    dev = {q.id for q in split_queries(judgments, "homedepot", "dev")[:30]}
    assert {s.query_id for s in read.sessions} == dev
    again = tmp_path / "again.jsonl"
    assert (
        invoke(
            "--dataset", "homedepot", "--split", "dev", "--out", str(again), "--limit", "30"
        ).exit_code
        == 0
    )
    assert again.read_bytes() == out.read_bytes()


def test_the_command_uses_train_queries_and_seen_phrasings_for_train(
    data_env: Path, tmp_path: Path
) -> None:
    out = tmp_path / "train.jsonl"
    result = invoke(
        "-d", "homedepot", "--split", "train", "--out", str(out), "--limit", "5", "--per-query", "2"
    )
    assert result.exit_code == 0, result.output
    judgments = load_dataset("homedepot", load_settings()).judgments()
    train = {q.id for q in split_queries(judgments, "homedepot", "train")}
    sessions = read_sessions(out, judgments).sessions
    assert {s.query_id for s in sessions} <= train
    assert {s.extra["phrasing"] for s in sessions} == {"seen"}
    assert {s.id.rsplit("-", 1)[1] for s in sessions} == {"0", "1"}


@pytest.mark.parametrize("phrasings", ["held-out", "all"])
def test_the_command_refuses_held_out_phrasings_for_train(
    data_env: Path, tmp_path: Path, phrasings: str
) -> None:
    out = tmp_path / "train.jsonl"
    result = invoke(
        "-d", "homedepot", "--split", "train", "--out", str(out), "--phrasings", phrasings
    )
    assert result.exit_code == 1
    assert isinstance(result.exception, BadInput)
    assert "train split takes only --phrasings seen" in str(result.exception)
    assert not out.exists()


def test_the_command_on_a_tiny_imported_catalog_has_refinements(
    data_env: Path, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(
        "\n".join(json.dumps(p.to_dict()) for p in PRODUCTS) + "\n", encoding="utf-8"
    )
    rows = ["query,product_id,gain"] + [
        f"{text},{pid},{gain}" for text, gains in JUDGED.items() for pid, gain in gains.items()
    ]
    judgments_file = tmp_path / "judgments.csv"
    judgments_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    import_dataset(catalog, "jsonl", "tiny", load_settings(), judgments_path=judgments_file)
    out = tmp_path / "tiny.jsonl"
    result = invoke("-d", "tiny", "--split", "all", "--out", str(out), "--seed", "4")
    assert result.exit_code == 0, result.output
    dataset = load_dataset("tiny", load_settings())
    judgments = dataset.judgments()
    sessions = read_sessions(out, judgments).sessions
    assert {s.kind for s in sessions} == set(DEFAULT_KINDS)
    products = {p.id: p for p in dataset.products()}
    for session in sessions:
        assert_query_words_present(session)
        if session.kind == "refinement":
            assert_constraint_keeps(session, judgments, products)


def test_clean_sessions_are_the_queries_as_typed_and_only_when_asked(tiny: Tiny) -> None:
    """``clean``: one turn, the judged query's own text (what ``last`` = ``copy`` scores)."""
    clean = generate(tiny, kinds=("clean",))
    assert clean and all(s.turns == (s.query_text,) and s.kind == "clean" for s in clean)
    assert len(clean) == len(tiny[1])
    assert "clean" not in {s.kind for s in generate(tiny)} and "clean" in KINDS
