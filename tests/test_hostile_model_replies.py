"""Hostile pass, items 9 and 10: what a model server sends, and a disk that fills mid-chat,
through the real ``shopagent chat`` on loopback sockets.

A server that answers something other than an OpenAI chat completion (an HTML page, JSON of
another shape, SSE events that are not JSON) is named in the reply with its URL; one that
streams megabytes is cut at ``response_byte_cap`` (a 3 MB reply held a turn to its deadline,
123 s); and a full disk ends neither the chat nor the process: the turn says it was not saved
(before: ``unexpected OperationalError: database or disk is full``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from agent.runtime.llm_client import response_byte_cap
from tests.hostile_helpers import (
    PROJECT_ROOT,
    http_server,
    indexed_mini_home,
    openai_handler,
    shopagent,
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return indexed_mini_home(tmp_path_factory.mktemp("hostile-replies") / "home")


def answering(kind: str) -> type[BaseHTTPRequestHandler]:
    """A server on ``/chat/completions`` that answers as ``kind`` says, whatever is asked."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if kind == "html":
                self._whole("text/html", b"<html><body>It works!</body></html>")
            elif kind == "other-json":
                self._whole("application/json", b'{"hello": "world"}')
            else:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                events = {
                    "sse-not-json": [b"not json at all"],
                    "sse-other-shape": [b'{"hello": 1}'],
                    "huge": [_huge_chunk()] * 3000,  # 3 MB of one reply
                }[kind]
                try:
                    for event in [*events, b"[DONE]"]:
                        self.wfile.write(b"data: " + event + b"\n\n")
                except OSError:
                    pass  # the client stopped reading: what a cap is for

        def _whole(self, content_type: str, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def _huge_chunk() -> bytes:
    delta = {"content": "A" * 1000}
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    return json.dumps({"id": "x", "object": "chat.completion.chunk", "choices": [choice]}).encode()


def chat(home: Path, url: str, stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {"SHOPAGENT_LLM_BASE_URL": url, "SHOPAGENT_LLM_MODEL": "fake", "TERM": "dumb"}
    return shopagent(home, "chat", "--dataset", "mini", *args, stdin=stdin, env=env)


@pytest.mark.parametrize(
    ("kind", "detail"),
    [
        ("html", "its answer held no chat completion chunks"),
        ("other-json", "its answer held no chat completion chunks"),
        ("sse-not-json", "it streamed an event that is not JSON"),
        ("sse-other-shape", "it streamed an event that is not a chat completion chunk"),
    ],
)
def test_a_server_that_is_not_an_openai_server_is_named(home: Path, kind: str, detail: str) -> None:
    # Before: "The model is unavailable (No generation chunks were returned)", or
    # "(Expecting value: line 1 column 1 (char 0))", or nothing at all for another shape:
    # which server, and what it did, was not said.
    with http_server(answering(kind)) as url:
        result = chat(home, url, b"wireless mouse\n/quit\n")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert f"the model server at {url} did not answer as an OpenAI-compatible server" in out
    assert detail in out
    assert "Wireless Mouse M185" in out  # the turn still searched the shopper's words


def test_a_runaway_reply_is_cut_at_the_cap_and_named(home: Path) -> None:
    with http_server(answering("huge")) as url:
        started = time.monotonic()
        result = chat(home, url, b"wireless mouse\n/quit\n", "--turn-timeout", "60")
        took = time.monotonic() - started
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    cap_kib = response_byte_cap(256) // 1024
    assert f"the model server at {url} sent more than {cap_kib} KiB in one answer" in out
    # Before: the 3 MB was read and parsed to the end of the turn (123 s for a 120 s turn).
    assert took < 45, took
    assert len(out) < 20_000


# -- a disk that fills mid-chat --------------------------------------------------------------


def _can_mount_tmpfs(where: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f'mount -t tmpfs -o size=1m tmpfs "{where}"'],
        capture_output=True,
        timeout=60,
    )
    return probe.returncode == 0


def test_a_full_disk_mid_chat_loses_the_turn_not_the_chat(home: Path, tmp_path: Path) -> None:
    """The home on a 16 MB tmpfs in a private mount namespace; the model server fills it
    when the chat's second request arrives (through ``/proc/PID/root``, the chat's view)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if not _can_mount_tmpfs(mount_point):
        pytest.skip("needs root and unshare to give the chat a small disk of its own")
    started: dict[str, int] = {}
    base = openai_handler("Here you go.")

    class Filling(base):  # type: ignore[misc, valid-type]
        requests = 0

        def do_POST(self) -> None:
            Filling.requests += 1
            if Filling.requests == 2:
                filler = Path(f"/proc/{started['pid']}/root{mount_point}/filler")
                try:
                    with filler.open("wb") as out:
                        while True:
                            out.write(b"\0" * 65536)
                            out.flush()
                except OSError:
                    pass  # full
            super().do_POST()

    script = (
        'mount -t tmpfs -o size=16m tmpfs "$0" && mkdir "$0/home" && '
        'cp -a "$1/datasets" "$1/indexes" "$0/home/" && '
        'SHOPAGENT_HOME="$0/home" exec "$2" -m cli chat --dataset mini'
    )
    lines = b"wireless mouse\ngaming mouse\n/like 1\n/filters under 30\nlogitech mouse\n/quit\n"
    with http_server(Filling) as url:
        env = {**os.environ, "SHOPAGENT_LLM_BASE_URL": url, "SHOPAGENT_LLM_MODEL": "fake"}
        env.update({"TERM": "dumb", "COLUMNS": "200"})
        for name in ("SHOPAGENT_ES_URL", "SHOPAGENT_CHROMA_URL"):
            env.pop(name, None)
        child = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", script, str(mount_point), str(home), sys.executable],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        started["pid"] = child.pid
        out_bytes, err_bytes = child.communicate(lines, timeout=300)
    out, err = out_bytes.decode(), err_bytes.decode()
    assert Filling.requests >= 2, (out, err)
    assert "unexpected" not in err and "OperationalError" not in err, err
    assert child.returncode == 0, (child.returncode, err)
    assert "the disk is full: this turn was not saved" in out, out
    assert "you> /quit" in out  # every line after the full disk was still read
