"""Ctrl-C in the middle of a turn ends ``shopagent chat`` at once, with a message.

A real pseudo-terminal and a real model server on 127.0.0.1 that answers a byte a second (so
the turn is mid-request when the shopper presses Ctrl-C): the chat must say so and exit within
two seconds, not wait out the request or a server's graceful shutdown.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from threading import Event, Thread

import pexpect
import pytest

from tests.test_llm_deadline import _handler

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def shopagent(home: Path, *args: str) -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cli", *args],
        cwd=str(PROJECT_ROOT),
        env={**os.environ, "SHOPAGENT_HOME": str(home)},
        encoding="utf-8",
        timeout=120,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before


@pytest.fixture()
def slow_model_server() -> Iterator[tuple[str, Event]]:
    """The dripping server's URL, and an event set once a request has reached it."""
    asked = Event()
    dripping = _handler(b"d", 1.0)

    class Dripping(dripping):  # type: ignore[misc, valid-type]
        def do_POST(self) -> None:
            asked.set()
            super().do_POST()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Dripping)
    server.daemon_threads = True
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", asked
    finally:
        server.shutdown()
        server.server_close()


def test_ctrl_c_mid_turn_exits_within_two_seconds_with_a_message(
    tmp_path: Path, slow_model_server: tuple[str, Event]
) -> None:
    url, asked = slow_model_server
    home = tmp_path / "home"
    catalog = str(FIXTURES / "chat" / "catalog.jsonl")
    shopagent(home, "data", "import", catalog, "--format", "jsonl", "--name", "shop")
    shopagent(home, "index", "--dataset", "shop", "--no-concepts")
    env = {
        **os.environ,
        "SHOPAGENT_HOME": str(home),
        "SHOPAGENT_LLM_BASE_URL": url,
        "TERM": "dumb",
        "COLUMNS": "160",
    }
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cli", "chat", "--dataset", "shop", "--turn-timeout", "60"],
        cwd=str(PROJECT_ROOT),
        env=env,
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 160),
    )
    child.expect("you> ")
    child.sendline("a wireless mouse")
    # the turn is waiting on the dripping server once its request has arrived there
    assert asked.wait(timeout=60), "the turn never asked the model server"
    time.sleep(0.3)  # and reading its drip: the client is past sending the request
    assert child.isalive()
    pressed = time.monotonic()
    child.sendintr()
    child.expect(pexpect.EOF, timeout=10)
    elapsed = time.monotonic() - pressed
    child.close()
    assert "interrupted" in child.before
    assert elapsed <= 2.0, f"Ctrl-C took {elapsed:.1f} s to end the chat"
    assert child.exitstatus == 130 or child.signalstatus is not None
