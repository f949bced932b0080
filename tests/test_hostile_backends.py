"""Issue 15, item 5: dead, hung and impostor backends, through the CLI, on real loopback sockets.

A model server that accepts and never answers must not hold a chat turn past its deadline,
and the reply must not pretend a search ran; a hung Chroma server times out; a server that
answers but is not Chroma says so; each in one line.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.runtime.llm_client import request_budget
from agent.trajectory.log import TrajectoryLog, default_log_path
from tests.hostile_helpers import (
    FIXTURES,
    NotChromaHandler,
    http_server,
    hung_server,
    import_catalog,
    shopagent,
)
from tools.settings.llm import LLMSettings

TURN_TIMEOUT_S = 4.0
#: Process start, imports and index open around the turn itself.
STARTUP_ALLOWANCE_S = 60.0


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("hostile-backends")
    catalog = FIXTURES / "generic" / "catalog.jsonl"
    assert import_catalog(home, catalog, "jsonl", "mini").returncode == 0
    assert shopagent(home, "index", "--dataset", "mini", "--no-concepts").returncode == 0
    return home


def chat_once(
    home: Path, llm_url: str, message: bytes = b"a wireless mouse\n"
) -> tuple[str, float]:
    started = time.monotonic()
    result = shopagent(
        home,
        "chat",
        "--dataset",
        "mini",
        "--turn-timeout",
        str(TURN_TIMEOUT_S),
        stdin=message + b"/quit\n",
        env={"SHOPAGENT_LLM_BASE_URL": llm_url, "SHOPAGENT_LLM_MODEL": "fake", "TERM": "dumb"},
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr.decode()
    assert b"Traceback" not in result.stderr
    return result.stdout.decode(), elapsed


def test_a_hung_model_server_never_holds_a_turn_past_its_deadline(home: Path) -> None:
    with hung_server() as url:
        out, elapsed = chat_once(home, url)
    assert elapsed < TURN_TIMEOUT_S + STARTUP_ALLOWANCE_S
    answer = next(line for line in out.splitlines() if line.startswith("assistant>"))
    assert "The model is unavailable" in answer
    assert f"the model server at {url}" in answer and "did not answer" in answer
    episode = TrajectoryLog(default_log_path(home)).latest()[-1]
    assert_no_search_claimed_unless_one_ran(answer, episode)
    assert episode["stop_reason"] in ("model_error", "timeout")
    # the turn itself, as logged: one request of at most the turn, no retries (was 363 s)
    assert episode["latency"]["total_ms"] < (TURN_TIMEOUT_S + 2.0) * 1000


def test_a_dead_model_server_is_named_and_no_search_is_claimed(home: Path) -> None:
    with hung_server() as url:
        pass  # closed: nothing listens on that port any more
    out, _ = chat_once(home, url)
    answer = next(line for line in out.splitlines() if line.startswith("assistant>"))
    assert f"the model server at {url} is unreachable (ConnectionRefusedError" in answer
    episode = TrajectoryLog(default_log_path(home)).latest()[-1]
    assert_no_search_claimed_unless_one_ran(answer, episode)


def assert_no_search_claimed_unless_one_ran(answer: str, episode: dict[str, object]) -> None:
    searched = any(step["tool_calls"] for step in episode["steps"])  # type: ignore[attr-defined]
    assert searched or "couldn't find matching products" not in answer, answer


def test_requests_and_retries_fit_in_the_turn() -> None:
    defaults = LLMSettings()
    assert request_budget(defaults, None) == (defaults.timeout_s, defaults.max_retries)
    assert request_budget(defaults, 120.0) == (120.0, 0)
    timeout, retries = request_budget(LLMSettings(timeout_s=30.0, max_retries=5), 120.0)
    assert (timeout, retries) == (30.0, 3) and timeout * (retries + 1) <= 120.0
    timeout, retries = request_budget(defaults, 4.0)
    assert timeout * (retries + 1) <= 4.0


def test_a_hung_chroma_server_times_out_in_one_line(home: Path) -> None:
    with hung_server() as url:
        started = time.monotonic()
        result = shopagent(
            home,
            "search",
            "mouse",
            "--dataset",
            "mini",
            "--tool",
            "dense",
            env={"SHOPAGENT_CHROMA_URL": url, "SHOPAGENT_CHROMA_TIMEOUT": "2"},
        )
        elapsed = time.monotonic() - started
    assert elapsed < 2 + STARTUP_ALLOWANCE_S
    assert result.returncode == 1
    (line,) = result.stderr.decode().strip().splitlines()
    assert line.startswith("error:") and f"the Chroma server at {url} did not answer" in line


def test_a_server_that_is_not_chroma_says_so_in_one_line(home: Path) -> None:
    with http_server(NotChromaHandler) as url:
        result = shopagent(
            home,
            "search",
            "mouse",
            "--dataset",
            "mini",
            "--tool",
            "concepts",
            env={"SHOPAGENT_CHROMA_URL": url},
        )
    assert result.returncode == 1
    (line,) = result.stderr.decode().strip().splitlines()
    assert line.startswith("error:") and f"the server at {url} is not a Chroma server" in line
    assert "UserIdentity" not in line


def test_a_hung_or_impostor_elasticsearch_is_one_line_too(home: Path) -> None:
    with hung_server() as url:
        hung = shopagent(
            home, "search", "mouse", "--dataset", "mini", env={"SHOPAGENT_ES_URL": url}
        )
    (line,) = hung.stderr.decode().strip().splitlines()
    assert hung.returncode == 1 and f"Elasticsearch at {url} did not answer within" in line
    with http_server(NotChromaHandler) as url:
        other = shopagent(
            home, "search", "mouse", "--dataset", "mini", env={"SHOPAGENT_ES_URL": url}
        )
    (line,) = other.stderr.decode().strip().splitlines()
    assert other.returncode == 1 and f"the server at {url} is not Elasticsearch" in line


def test_the_fallback_answer_claims_no_search_after_a_model_error() -> None:
    from agent.conversation.prompts import fallback_answer

    assert "couldn't find" not in fallback_answer("model_error", 0)
