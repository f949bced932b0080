"""A model server that answers slowly forever cannot hold a chat turn past its deadline.

Real sockets on 127.0.0.1: a server that sends its headers and then drips one byte a second,
and one that sends only SSE keep-alive comments. httpx's read timeout never trips on either
(bytes keep arriving); the deadline transport must end the request on time, as one line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from langchain_core.messages import HumanMessage

from agent.runtime.llm_client import chat_model, complete_with_tools
from tools.errors import BackendError
from tools.settings.llm import LLMSettings

#: Each dripping server stops by itself after this many seconds (bounded test traffic).
SERVER_LIFETIME_S = 20.0


def _handler(body_piece: bytes, interval: float) -> type[BaseHTTPRequestHandler]:
    class Dripping(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            stop = time.monotonic() + SERVER_LIFETIME_S
            try:
                while time.monotonic() < stop:
                    self.wfile.write(body_piece)
                    self.wfile.flush()
                    time.sleep(interval)
            except OSError:  # the client gave up: what the test wants
                return

        def log_message(self, *args: object) -> None:
            return

    return Dripping


@pytest.fixture(params=["one-byte-a-second", "keep-alive-comments"])
def dripping_server(request: pytest.FixtureRequest) -> Iterator[str]:
    piece, interval = {
        "one-byte-a-second": (b"d", 1.0),
        "keep-alive-comments": (b": keep-alive\n\n", 0.5),
    }[request.param]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(piece, interval))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_a_streamed_turn_against_a_dripping_server_ends_within_its_deadline(
    dripping_server: str,
) -> None:
    llm = LLMSettings(base_url=dripping_server, model="m", timeout_s=120.0, max_retries=2)
    model = chat_model(llm, turn_timeout_s=5.0)
    started = time.monotonic()
    with pytest.raises(BackendError) as raised:
        for _ in model.stream([HumanMessage("a wireless mouse")]):
            pass
    elapsed = time.monotonic() - started
    assert elapsed < 6.0, f"a 5 s turn took {elapsed:.1f} s"
    assert f"the model server at {dripping_server}" in str(raised.value)
    assert "within 5 s" in str(raised.value)


def test_a_plain_completion_against_a_dripping_server_ends_within_its_timeout(
    dripping_server: str,
) -> None:
    llm = LLMSettings(base_url=dripping_server, model="m", timeout_s=3.0, max_retries=0)
    started = time.monotonic()
    with pytest.raises(Exception) as raised:
        complete_with_tools(llm, [{"role": "user", "content": "hi"}])
    assert time.monotonic() - started < 4.5
    assert "longer than 3 s" in str(raised.value) or "timed out" in str(raised.value).lower()
