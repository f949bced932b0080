"""`shopagent chat` end to end in a real pseudo-terminal, with the real local model served by
`transformers serve`: a turn runs, products come from the index, /buy N becomes reward in the
trajectory log, /history and /quit work.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
import pytest

from agent.trajectory.log import TrajectoryLog, default_log_path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TURN_TIMEOUT_S = 420

pytestmark = pytest.mark.slow


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
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("chat-home")
    catalog = str(FIXTURES / "generic" / "catalog.jsonl")
    run_cli(home, "data", "import", catalog, "--format", "jsonl", "--name", "mini")
    run_cli(home, "index", "--dataset", "mini", "--no-concepts")
    run_cli(home, "model", "init", "--if-missing")
    return home


def test_chat_in_a_real_terminal_with_the_local_model(home: Path) -> None:
    # TERM=dumb: rich writes no escape codes, so the screen text can be matched as written.
    env = {**os.environ, "SHOPAGENT_HOME": str(home), "TERM": "dumb", "COLUMNS": "160"}
    env.pop("SHOPAGENT_LLM_BASE_URL", None)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cli", "chat", "--dataset", "mini", "--turn-timeout", str(TURN_TIMEOUT_S)],
        cwd=str(PROJECT_ROOT),
        env=env,
        encoding="utf-8",
        timeout=TURN_TIMEOUT_S + 120,
        dimensions=(50, 160),
    )
    try:
        child.expect("conversation ")
        child.expect("you> ")
        child.sendline("I want a wireless mouse")
        child.expect("assistant>")
        child.expect("you> ")
        turn = child.before
        # Whatever the 135M model wrote, products shown come from the index, with catalog prices.
        if "/buy N" in turn:
            assert "Mouse" in turn
            child.sendline("/buy 1")
            child.expect("episode reward")
            child.expect("you> ")
        child.sendline("/history")
        child.expect(r"1\. you> I want a wireless mouse")
        child.expect("you> ")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    records = TrajectoryLog(default_log_path(home)).latest()
    assert records, "the turn was not logged"
    episode = records[-1]
    assert episode["model_id"] and episode["user_text"] == "I want a wireless mouse"
    assert episode["latency"]["model_ms"] > 0
    if "/buy N" in turn:
        assert [f["kind"] for f in episode["feedback"]] == ["buy"]
        assert episode["reward"]["components"]
