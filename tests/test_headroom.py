"""``rl.headroom``: the oracle, the fixed habits and the held-out selector of the expand action.

The selector must find a gain that carries over from train to unseen requests and must not
find one in noise; the outcomes are read from a real enumerated log on a real tiny index.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from agent.trajectory.log import TrajectoryLog
from rl.enumerated import collect_enumerated
from rl.headroom import (
    CallOutcome,
    RequestOutcomes,
    headroom,
    main,
    prompt_candidates,
    read_outcomes,
)
from rl.rewards import LiveSearch, RawBaseline
from rl.rollouts import CollectConfig
from tests.catalog_samples import sample_products
from tools.catalog.judgments import Judgments, Query
from tools.search.tantivy_backend import TantivyIndex
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings

DIMENSIONS = 64


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread() -> Iterator[None]:
    """The selector's gradient boosting on one OpenMP thread: on a busy 2-core machine two
    threads spin-wait on each other (measured 29 s against 2 s per fit, same report)."""
    with threadpool_limits(limits=1):
        yield


def bag_of_words(texts: list[str]) -> np.ndarray:
    """A real (if crude) text encoder: hashed word counts, unit length. Its words are known,
    so a test can say which word carries the gain."""
    rows = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            rows[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1.0
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)


def requests(n: int, seed: int, gain_of: dict[str, float], noise: float) -> list[RequestOutcomes]:
    """Requests whose candidate words are drawn from ``gain_of``; a call's gain is its word's
    gain plus noise (with every word at 0, pure noise)."""
    rng = random.Random(seed)
    words = sorted(gain_of)
    out = []
    for i in range(n):
        request = RequestOutcomes(f"q{seed}-{i}", f"thing{rng.randrange(50)} item", copy=0.4)
        for rank, word in enumerate(rng.sample(words, 3)):
            gain = gain_of[word] + rng.gauss(0.0, noise)
            request.calls.append(CallOutcome(word, rank, 1, max(-0.4, gain)))
        out.append(request)
    return out


def test_the_selector_finds_a_word_that_helps_unseen_requests() -> None:
    gain_of = {"good": 0.3, "bad": -0.3, "meh": 0.0, "so": 0.0, "la": -0.05}
    train = requests(160, seed=1, gain_of=gain_of, noise=0.05)
    dev = requests(120, seed=2, gain_of=gain_of, noise=0.05)
    report = headroom(train, dev, bag_of_words)
    rows = {row.choice: row for row in report.rows}
    selector = rows["selector (fitted on train)"].comparison
    oracle = rows["oracle (best call per request)"].comparison
    has_good = sum(any(c.words == "good" for c in r.calls) for r in dev)
    # it adds the helpful word where the prompt offers it: nearly all of its 0.3 per request
    assert rows["selector (fitted on train)"].changed >= has_good * 0.9
    assert selector.delta > 0.8 * 0.3 * has_good / len(dev)
    assert selector.wilcoxon_p is not None and selector.wilcoxon_p < 1e-6
    assert oracle.mean_b >= selector.mean_b
    # the habit of always taking the top candidate word has no such gain
    assert rows["always the top candidate word"].comparison.delta < selector.delta / 2
    assert report.margin < float("inf") and report.train_selector_gain > 0


def test_the_selector_finds_nothing_in_noise() -> None:
    noise_only = {word: 0.0 for word in ("red", "green", "blue", "cyan", "pink")}
    train = requests(160, seed=3, gain_of=noise_only, noise=0.1)
    dev = requests(120, seed=4, gain_of=noise_only, noise=0.1)
    report = headroom(train, dev, bag_of_words)
    rows = {row.choice: row for row in report.rows}
    selector = rows["selector (fitted on train)"].comparison
    # the oracle sees a large gain: the noise's best draw per request
    assert rows["oracle (best call per request)"].comparison.delta > 0.05
    # the selector does not carry it to dev requests
    assert selector.wilcoxon_p is None or selector.wilcoxon_p > 0.01 or selector.delta <= 0


@pytest.fixture()
def enumerated_log(tmp_path: Path) -> tuple[Path, Judgments, SearchToolbox]:
    settings = Settings(home=tmp_path / "home")
    TantivyIndex(settings.tantivy_dir("samples"), create=True).index(sample_products())
    toolbox = SearchToolbox(settings, "samples")
    judgments = Judgments()
    for text, product in (("wireles mouse", "m3"), ("logitech mouse", "m3"), ("usb mouse", "m1")):
        judgments.add(Query.from_text(text), product, 2)
    log = TrajectoryLog(tmp_path / "enum.jsonl")
    config = CollectConfig(dataset="samples", strategy="expand", candidates="enumerate")
    collect_enumerated(
        list(judgments), judgments, toolbox.lexical, LiveSearch(toolbox), log, config
    )
    return log.path, judgments, toolbox


def test_outcomes_are_read_from_an_enumerated_log(
    enumerated_log: tuple[Path, Judgments, SearchToolbox],
) -> None:
    path, judgments, toolbox = enumerated_log
    outcomes = {r.query_text: r for r in read_outcomes(path)}
    assert set(outcomes) == {q.text for q in judgments}
    typo = outcomes["wireles mouse"]
    # the copy is the request as the prompt shows it: respelled, it finds the judged mouse
    # first, so it beats the shopper's own words and no added word can gain on it
    raw = RawBaseline(toolbox)(typo.query_text, judgments.gains(typo.query_id))
    assert typo.copy == pytest.approx(1.0) and raw < 1.0
    assert typo.best() == pytest.approx(1.0)
    adds = [c for c in typo.calls if c.added == 1]
    assert adds and [c.rank for c in adds] == list(range(len(adds)))
    assert all(c.gain <= 0 for c in typo.calls)
    pairs = [c for c in typo.calls if c.added == 2]
    assert pairs and all(len(c.words.split()) == 2 for c in pairs)


def test_the_command_reports_and_refuses_a_log_without_enumerated_rollouts(
    enumerated_log: tuple[Path, Judgments, SearchToolbox],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = tmp_path / "empty.jsonl"
    TrajectoryLog(empty)  # a log with no records
    empty.touch()
    path, _, _ = enumerated_log
    assert main(["--train", str(empty), "--dev", str(path)]) == 2
    assert "no enumerated expand rollouts" in capsys.readouterr().err
    assert main(["--train", str(tmp_path / "missing.jsonl"), "--dev", str(path)]) == 2
    assert capsys.readouterr().err.strip().endswith("missing.jsonl: no such trajectory file")


def test_candidates_are_read_from_the_prompt() -> None:
    messages = [
        {"role": "system", "content": "…"},
        {"role": "user", "content": "wireles headphones\nCandidate words: bluetooth, ear"},
        {"role": "assistant", "content": "<tool_call>…</tool_call>"},
        {"role": "user", "content": "porcelain\nCandidate words: tile, enameled , sink"},
    ]
    assert prompt_candidates(messages) == ["tile", "enameled", "sink"]
    assert prompt_candidates([{"role": "user", "content": "no list"}]) == []


def test_the_habit_takes_the_top_word_wherever_the_prompt_offers_one() -> None:
    def request(name: str, calls: list[CallOutcome]) -> RequestOutcomes:
        return RequestOutcomes(name, f"{name} words", copy=0.5, calls=calls)

    offered = request(
        "offered",
        [CallOutcome("second", 1, 1, 0.4), CallOutcome("top", 0, 1, 0.3)],
    )
    paired = request("paired", [CallOutcome("top second", 0, 2, 0.2)])
    nothing = request("nothing", [])
    train = requests(30, 1, {"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0}, 0.05)
    report = headroom(train, [offered, paired, nothing], bag_of_words)
    habit = {row.choice: row for row in report.rows}["always the top candidate word"]
    # the single top word where offered (0.3); a pair is not the habit; no call: the copy
    assert habit.changed == 1
    assert habit.comparison.mean_b == pytest.approx(0.5 + 0.3 / 3)
