"""What the hostile-input tests share: the real CLI as a subprocess, and real loopback servers.

The servers are real sockets on 127.0.0.1, each in a daemon thread that stops itself after
``lifetime_s`` even if a test forgets to: one that accepts and never answers (a hung model
or Chroma server), one that answers every request with JSON that is not Chroma's, and a
minimal OpenAI-compatible chat server that streams a fixed reply.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def shopagent(
    home: Path,
    *args: str | bytes,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[bytes]:
    """``shopagent ARGS`` in a subprocess, as a shopper runs it; stdout/stderr as bytes."""
    environment = {**os.environ, "SHOPAGENT_HOME": str(home), "COLUMNS": "200"}
    for name in ("SHOPAGENT_ES_URL", "SHOPAGENT_CHROMA_URL", "SHOPAGENT_LLM_BASE_URL"):
        environment.pop(name, None)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=PROJECT_ROOT,
        env=environment,
        input=stdin,
        capture_output=True,
        timeout=timeout,
    )


def import_catalog(
    home: Path, path: Path, fmt: str, name: str
) -> subprocess.CompletedProcess[bytes]:
    return shopagent(home, "data", "import", str(path), "--format", fmt, "--name", name)


def indexed_mini_home(home: Path) -> Path:
    """``home`` with the generic fixture catalog imported as ``mini`` and its lexical index
    built, through the real commands (the hostile tests' starting point)."""
    catalog = FIXTURES / "generic" / "catalog.jsonl"
    assert import_catalog(home, catalog, "jsonl", "mini").returncode == 0
    built = shopagent(home, "index", "--dataset", "mini", "--no-concepts")
    assert built.returncode == 0, built.stderr
    return home


def write_jsonl(path: Path, records: list[dict[str, object] | str]) -> Path:
    """One line per record: dicts as JSON, strings written as they are (hostile lines)."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@contextmanager
def hung_server(lifetime_s: float = 120.0) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        ends = time.monotonic() + lifetime_s
        while not stop.is_set() and time.monotonic() < ends:
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            held.append(connection)  # read nothing, answer nothing

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        listener.close()


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler], lifetime_s: float = 120.0) -> Iterator[str]:
    """A real HTTP server on loopback running ``handler``; shut down on exit or after lifetime."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    timer = threading.Timer(lifetime_s, server.shutdown)
    timer.daemon = True
    timer.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        timer.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class NotChromaHandler(BaseHTTPRequestHandler):
    """Answers every request with ``{"hello": "world"}``: a web service, not Chroma or ES."""

    def _answer(self) -> None:
        body = b'{"hello": "world"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


def openai_handler(reply: str) -> type[BaseHTTPRequestHandler]:
    """An OpenAI-compatible ``/chat/completions`` that streams ``reply`` as the answer."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            chunks = [{"role": "assistant", "content": ""}, {"content": reply}]
            self.send_response(200)
            if request.get("stream"):
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for index, delta in enumerate(chunks):
                    finish = "stop" if index == len(chunks) - 1 else None
                    event = _chunk(delta, finish)
                    self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                self.wfile.write(b"data: [DONE]\n\n")
                return
            body = json.dumps(_completion(reply)).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def _chunk(delta: dict[str, str], finish: str | None) -> dict[str, object]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _completion(reply: str) -> dict[str, object]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "finish_reason": "stop",
            }
        ],
    }
