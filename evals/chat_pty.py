"""The real ``shopagent chat`` in a pseudo-terminal, and the trajectory records its turns write.

Shared by the chat benchmark (``evals.perf.bench_chat_pty``) and the dialog suite
(``evals.dialog_suite``): both drive the command a shopper runs, in a pty (``pexpect``), on the
embedded model, and read what each turn did from the trajectory log rather than from the
terminal's drawing (the log holds the shown products' ids, titles, brands and prices as the
catalog has them, which a table cut to the terminal's width does not).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pexpect

from agent.protocol.chat_template import STOP_STRINGS
from agent.trajectory.log import decode_line, latest_revisions

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROMPT = "you> "
#: The pty's size: wide enough that a reply is not folded mid-phrase.
PTY_DIMENSIONS = (50, 160)


def chat_env(base_url: str | None = None) -> dict[str, str]:
    """The environment of a chat run on the embedded model (or on the shared local server at
    ``base_url``): a dumb terminal, so the pty carries text and no cursor codes."""
    env = {**os.environ, "TERM": "dumb", "COLUMNS": str(PTY_DIMENSIONS[1])}
    env.pop("SHOPAGENT_LLM_PROSE", None)
    env.pop("SHOPAGENT_LLM_BASE_URL", None)
    if base_url:  # the shared local server: the chat as it runs on the embedded model
        env.update(
            SHOPAGENT_LLM_BASE_URL=base_url,
            SHOPAGENT_LLM_PROSE="composed",
            SHOPAGENT_LLM_STOP=STOP_STRINGS[0],
        )
    return env


def spawn_chat(
    dataset: str,
    *,
    extra: Sequence[str] = (),
    base_url: str | None = None,
    timeout_s: float = 300,
) -> pexpect.spawn:
    """``shopagent chat --dataset DATASET [extra]`` in a new pty, as the project's interpreter
    runs it (``python -m cli``: the same ``main`` the ``shopagent`` script calls)."""
    return pexpect.spawn(
        sys.executable,
        ["-m", "cli", "chat", "--dataset", dataset, *extra],
        cwd=str(PROJECT_ROOT),
        env=chat_env(base_url),
        encoding="utf-8",
        timeout=timeout_s,
        dimensions=PTY_DIMENSIONS,
    )


def first_prompt(child: pexpect.spawn) -> str:
    """Wait for the chat's banner and first prompt; the conversation id the banner names."""
    child.expect(r"conversation ([0-9a-f]+)")
    conversation = str(child.match.group(1))
    child.expect(PROMPT)
    return conversation


def quit_chat(child: pexpect.spawn) -> None:
    """``/quit``, then wait for the process to end (it joins its warm-up before leaving)."""
    try:
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def turn_records(records: Sequence[dict[str, Any]], conversation: str) -> list[dict[str, Any]]:
    """One chat's turn records (the latest revision of each), in turn order.

    Why filter by conversation: the log is the home's, shared with any other chat running now.
    """
    found = [
        r
        for r in latest_revisions(records)
        if r.get("conversation_id") == conversation and isinstance(r.get("latency"), dict)
    ]
    return sorted(found, key=lambda r: int(r.get("turn", 0)))


class LogTail:
    """The records appended to a trajectory log since this tail was opened.

    Why a byte offset: the home's log holds every chat ever run (megabytes); re-reading it
    each turn would cost more than the turn. A torn or damaged line is skipped, as the log's
    own reader does.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self._partial = b""

    def new_records(self) -> list[dict[str, Any]]:
        """Records written since the last call (a line still being written waits)."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        self.offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        records: list[dict[str, Any]] = []
        for line in lines:
            try:
                records.append(decode_line(line))
            except (ValueError, UnicodeDecodeError, RecursionError):
                continue
        return records
