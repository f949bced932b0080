"""``eval run --sessions``: the repository's hand-written Chorus sessions through the real chat
graph on the real Chorus index, each strategy a row; the policy's model is a fake writer (it
reads the conversation prompt the chat builds, and writes a call from it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.protocol.chat_template import tool_call_text
from agent.protocol.writer_prompts import Prompt
from agent.runtime.writer_batches import WriterBatches
from evals.session_runs import SESSION_STRATEGIES
from evals.session_suite import run_session_eval
from evals.strategies import copy_strategy
from evals.suite import EvalOptions
from tools.catalog.datasets import load_dataset
from tools.catalog.judgments import Judgments
from tools.catalog.sessions import read_sessions
from tools.catalog.splits import split_queries
from tools.errors import BadInput
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings

HAND = Path(__file__).resolve().parents[1] / "evals" / "sessions" / "chorus-hand.jsonl"


@pytest.fixture(scope="module")
def judgments(chorus_settings: Settings) -> Judgments:
    return load_dataset("chorus", chorus_settings).judgments()


class FakeLastWordsWriter:
    """Writes a search for the last shopper line's last two words; counts its batches."""

    name = "fake-last-words"

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, prompts: Sequence[Prompt]) -> list[str]:
        with self.lock:
            self.batches.append(len(prompts))
        replies = []
        for prompt in prompts:
            user = str(prompt.messages[-1]["content"])
            shopper = [line for line in user.splitlines() if line.startswith("Shopper: ")]
            words = shopper[-1].removeprefix("Shopper: ").split()[-2:]
            replies.append(tool_call_text("search_products", {"query": " ".join(words)}))
        return replies


def run(settings: Settings, strategy: str, runs: Path, judgments: Judgments, **kw: object):
    options = EvalOptions("chorus", "dev", strategy, runs_root=runs)
    return run_session_eval(settings, options, HAND, judgments=judgments, **kw)  # type: ignore[arg-type]


def test_every_strategy_scores_the_dev_sessions_with_their_turns_and_kinds(
    chorus_settings: Settings, judgments: Judgments, tmp_path: Path
) -> None:
    sessions = read_sessions(HAND, judgments).sessions
    dev = {q.id for q in split_queries(judgments, "chorus", "dev")}
    expected = {s.id: s for s in sessions if s.query_id in dev}
    assert 10 <= len(expected) < len(sessions)  # the file holds test sessions too
    writer = FakeLastWordsWriter()
    reports = {}
    for strategy in SESSION_STRATEGIES:
        extra = {"writer": writer} if strategy == "policy" else {}
        outcome = run(chorus_settings, strategy, tmp_path, judgments, **extra)
        report = outcome.report
        reports[strategy] = report
        assert set(report.per_query) == set(expected)
        assert report.sessions == "chorus-hand"
        assert (
            report.name
            == outcome.run_dir.name
            == f"chorus-dev-chorus-hand-{strategy}"
            + ("-fake-last-words" if strategy == "policy" else "")
        )
        for session_id, entry in report.per_query.items():
            assert entry["turns"] == list(expected[session_id].turns)
            assert entry["kind"] == expected[session_id].kind
            assert entry["text"] == expected[session_id].query_text
        kinds = {s.kind for s in expected.values()}
        assert set(report.means_by_kind or {}) == kinds
        assert report.turns == sum(len(s.turns) for s in expected.values())
        assert f"{report.turns} turns at " in report.throughput()
        assert (outcome.run_dir / "report.json").is_file()

    # oracle: the judged query through the tool path, the same ranking as the copy strategy
    toolbox = SearchToolbox(chorus_settings, "chorus")
    session = next(iter(expected.values()))
    copied, _ = copy_strategy(toolbox).retrieve(session.query_text, 10)
    assert reports["oracle"].per_query[session.id]["top10"] == [h.product_id for h in copied.hits]
    assert reports["oracle"].means["ndcg@10"] > reports["last"].means["ndcg@10"]

    # policy: the fake's call is what the last turn searched, from the chat's own prompt
    policy = reports["policy"]
    assert policy.tool_calls == {"valid": 1.0, "repaired": 0.0, "invalid": 0.0}
    for session_id, entry in policy.per_query.items():
        written = json.loads(entry["written"]) if entry["written"] else {}
        last_words = " ".join(expected[session_id].turns[-1].split()[-2:])
        replaced = any("shares no word" in p for p in entry["problems"])
        if written and not replaced:  # the graph keeps a call only if it is about the request
            assert last_words in written["query"], (written, last_words)
    # sessions ran together: the writer's calls came in batches, not one by one
    assert max(writer.batches) > 1 and len(writer.batches) < sum(writer.batches)

    summary = (tmp_path / "chorus-dev-chorus-hand-summary.md").read_text()
    assert "## NDCG@10 per kind" in summary
    for strategy in SESSION_STRATEGIES:
        assert f"| {strategy} |" in summary


def test_a_query_strategy_or_a_split_without_sessions_is_refused(
    chorus_settings: Settings, judgments: Judgments, tmp_path: Path
) -> None:
    with pytest.raises(BadInput, match="does not run over sessions"):
        run(chorus_settings, "raw", tmp_path, judgments)
    options = EvalOptions("chorus", "dev", "graph", runs_root=tmp_path)
    other = tmp_path / "test-only.jsonl"
    test_session = next(
        line for line in HAND.read_text().splitlines() if json.loads(line).get("split") == "test"
    )
    other.write_text(test_session + "\n")
    with pytest.raises(BadInput, match="no session stands for a chorus dev query"):
        run_session_eval(chorus_settings, options, other, judgments=judgments)
    with pytest.raises(BadInput, match="needs a model"):
        from evals.session_runs import run_sessions

        run_sessions("policy", [], SearchToolbox(chorus_settings, "chorus"))


def test_batches_answer_every_thread_and_a_failure_reaches_each_waiter() -> None:
    seen: list[int] = []

    def fake_echo_writer(prompts: Sequence[Prompt]) -> list[str]:
        seen.append(len(prompts))
        return [str(p.messages[-1]["content"]) for p in prompts]

    batches = WriterBatches(fake_echo_writer, batch_size=8)
    assert batches._worker is None  # no thread until a prompt comes (graph-only runs have none)
    answers: dict[int, str] = {}

    def ask(n: int) -> None:
        answers[n] = batches.write(Prompt(({"role": "user", "content": f"m{n}"},), ()))

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert answers == {n: f"m{n}" for n in range(8)}
    assert sum(seen) == 8 and len(seen) < 8

    def fake_failing_writer(prompts: Sequence[Prompt]) -> list[str]:
        raise RuntimeError("model gone")

    failing = WriterBatches(fake_failing_writer, batch_size=4)
    with pytest.raises(RuntimeError, match="model gone"):
        failing.write(Prompt(({"role": "user", "content": "x"},), ()))
