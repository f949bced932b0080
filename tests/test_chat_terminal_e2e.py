"""`shopagent chat` end to end in a real pseudo-terminal, with the real local model (the
embedded SmolLM2-135M) served by `transformers serve`.

One five-turn conversation, the same one ``tests/test_conversation_fake_llm.py`` runs with a
fake model: a negated budget, "only Logitech", "the second one", "compare 1 and 2",
"cheaper". Whatever the 135M model writes, every request turn searches and shows products
from the index within the budget, references are answered from the catalog, no reply is
printed twice; then /buy N becomes reward in the trajectory log, and /filters, /clear,
/history and /quit work. Each turn's latency is recorded in the log and printed.
"""

from __future__ import annotations

import os
import sys
from decimal import Decimal
from pathlib import Path

import pexpect
import pytest

from agent.trajectory.log import TrajectoryLog, default_log_path
from tests.local_models import LocalModels

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TURN_TIMEOUT_S = 420

pytestmark = pytest.mark.slow

FIVE_TURNS = [
    "I want a wireless mouse that should not cost more than 60 dollars",
    "only Logitech",
    "the second one",
    "compare 1 and 2",
    "cheaper",
]


def run_cli(home: Path, *args: str) -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cli", *args],
        cwd=str(PROJECT_ROOT),
        env={**os.environ, "SHOPAGENT_HOME": str(home)},
        encoding="utf-8",
        timeout=600,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, local_models: LocalModels) -> Path:
    home = tmp_path_factory.mktemp("chat-home")
    catalog = str(FIXTURES / "chat" / "catalog.jsonl")
    run_cli(home, "data", "import", catalog, "--format", "jsonl", "--name", "shop")
    run_cli(home, "index", "--dataset", "shop", "--no-concepts")
    # the session's `model init` (converted once), then the command itself keeps it
    local_models.install(home)
    run_cli(home, "model", "init", "--if-missing")
    return home


def test_five_turn_chat_in_a_real_terminal_with_the_local_model(home: Path) -> None:
    # TERM=dumb: rich writes no escape codes, so the screen text can be matched as written.
    env = {**os.environ, "SHOPAGENT_HOME": str(home), "TERM": "dumb", "COLUMNS": "160"}
    for name in ("SHOPAGENT_LLM_BASE_URL", "SHOPAGENT_LLM_PROSE"):
        env.pop(name, None)  # the embedded model, with prose = auto (composed)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cli", "chat", "--dataset", "shop", "--turn-timeout", str(TURN_TIMEOUT_S)],
        cwd=str(PROJECT_ROOT),
        env=env,
        encoding="utf-8",
        timeout=TURN_TIMEOUT_S + 120,
        dimensions=(50, 160),
    )
    screens: list[str] = []
    try:
        child.expect("conversation ")
        child.expect("you> ")
        for message in FIVE_TURNS:
            child.sendline(message)
            child.expect("assistant>")
            before = child.before
            child.expect("you> ")
            screens.append(f"{before}assistant>{child.before}")
        child.sendline("/buy 1")
        child.expect(r"bought (.+?) \([^)]*\) · episode reward")
        bought = child.match.group(1)
        child.expect("you> ")
        child.sendline("/filters")
        child.expect(r"filters: (.+)\r?\n")
        filters = child.match.group(1).strip()
        child.expect("you> ")
        child.sendline("/clear")
        child.expect("filters cleared")
        child.expect("you> ")
        child.sendline("/history")
        child.expect(r"1\. you> I want a wireless mouse")
        child.expect("you> ")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0

    first, only, second, compare, cheaper = screens
    # every request turn shows products and the constraints they were searched with
    assert "searched: wireless mouse · under $60" in first and "/buy N" in first
    assert "searched: wireless mouse · Logitech · under $60" in only and "/buy N" in only
    assert "#2 Logitech" in second and "Comparing #1 and #2." in compare
    assert "searched: wireless mouse · Logitech · under $" in cheaper and "/buy N" in cheaper
    for screen in screens:  # the shopper never reads the same reply twice
        assert screen.count("assistant>") == 1 and "(thinking)" not in screen
    assert filters.startswith("wireless mouse · Logitech · under $")

    records = TrajectoryLog(default_log_path(home)).latest()
    assert [r["user_text"] for r in records] == FIVE_TURNS
    search_turns = [records[i] for i in (0, 1, 4)]
    for record in search_turns:
        calls = [c for step in record["steps"] for c in step["tool_calls"]]
        assert calls, record["user_text"]  # every request searched
        assert record["recommended"], record["user_text"]
        for product in record["recommended"]:
            assert Decimal(product["price"]) <= 60
    assert {p["brand"] for r in search_turns[1:] for p in r["recommended"]} == {"Logitech"}
    before = sorted(Decimal(p["price"]) for p in records[1]["recommended"])
    half = len(before) // 2
    median = before[half] if len(before) % 2 else (before[half - 1] + before[half]) / 2
    assert all(Decimal(p["price"]) < median for p in records[4]["recommended"])
    for record in records[2:4]:  # references: answered from the catalog, no model, no search
        assert record["stop_reason"] == "reference" and record["steps"] == []
    bought_record = records[-1]
    assert [f["kind"] for f in bought_record["feedback"]] == ["buy"]
    assert bought_record["recommended"][0]["title"] == bought
    assert bought_record["reward"]["components"]["feedback"] == 1.0
    for record in records:
        assert record["model_id"] and record["latency"]["total_ms"] > 0
    latencies = [round(r["latency"]["total_ms"] / 1000, 1) for r in records]
    print(f"turn latencies (s): {latencies}")
