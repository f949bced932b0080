"""Scripted shopper dialogs through the real ``shopagent chat``: is what the chat shows what the
shopper asked for?

Run: ``python -m evals.dialog_suite [--dataset chorus|homedepot] [--limit N] [--ids A,B]
[--known]`` after ``shopagent index`` for the dataset and ``shopagent model init``.

The dialogs are data (``evals/dialogs/<dataset>.jsonl``, one per line: ``id``, ``class``,
``turns`` (1-3 messages), ``expect`` (checks on the last turn) and optionally ``turn_expect``
(``{"1": {...}}``, checks on earlier turns); the checks are ``evals.dialog_checks``). Each
dataset runs in one ``shopagent chat --dataset D --quiet`` in a pseudo-terminal on the embedded
model, ``/reset`` between dialogs; what the shopper saw each turn (the reply, the products
shown with the catalog's titles, brands and prices, the stop reason) is read from the
trajectory record the turn appended to the home's log. ``known_failures.jsonl`` holds dialogs
the chat gets wrong today (each with a ``why``), kept out of the suite until it is mended;
``--known`` runs them instead. The exit code is 1 when any dialog fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pexpect
from rich.table import Table

from agent.terminal.render import TerminalConsole, literal
from agent.trajectory.log import default_log_path
from evals.chat_pty import PROMPT, LogTail, first_prompt, quit_chat, spawn_chat
from evals.dialog_checks import failed_checks, shown
from tools.settings.config import load_settings

DIALOGS_DIR = Path(__file__).resolve().parent / "dialogs"
KNOWN_FAILURES = DIALOGS_DIR / "known_failures.jsonl"
DATASETS = ("chorus", "homedepot")
#: Seconds one turn may take in the pty (the chat's own turn deadline is 120 s).
TURN_TIMEOUT_S = 180
#: Seconds to wait for a turn's record after its prompt came back (it is written before).
RECORD_WAIT_S = 10.0


@dataclass(frozen=True, slots=True)
class Dialog:
    """One scripted dialog: the shopper's messages, the checks on what its last turn shows
    (``expect``) and on earlier turns (``turn_expect``, by turn number)."""

    id: str
    cls: str
    dataset: str
    turns: tuple[str, ...]
    expect: dict[str, Any]
    turn_expect: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], dataset: str) -> Dialog:
        """One line of a dialog file; a malformed one raises (a suite must not shrink quietly)."""
        turns = tuple(str(t) for t in data["turns"])
        if not 1 <= len(turns) <= 3:
            raise ValueError(f"dialog {data.get('id')}: {len(turns)} turns (1 to 3)")
        per_turn = {int(k): dict(v) for k, v in (data.get("turn_expect") or {}).items()}
        if any(not 1 <= k < len(turns) for k in per_turn):
            raise ValueError(f"dialog {data['id']}: turn_expect names a turn it does not have")
        return cls(
            id=str(data["id"]),
            cls=str(data["class"]),
            dataset=str(data.get("dataset") or dataset),
            turns=turns,
            expect=dict(data["expect"]),
            turn_expect=per_turn,
        )


@dataclass(slots=True)
class TurnSeen:
    """What one turn showed: from its trajectory record (or the lack of one)."""

    text: str
    record: dict[str, Any] | None
    failures: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DialogResult:
    dialog: Dialog
    turns: list[TurnSeen] = field(default_factory=list)
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and all(not t.failures for t in self.turns)


def load_dialogs(path: Path, dataset: str | None = None) -> list[Dialog]:
    """The dialogs in a JSONL file (blank lines skipped), of ``dataset`` when given."""
    dialogs: list[Dialog] = []
    default = dataset or path.stem
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            dialog = Dialog.from_dict(json.loads(line), default)
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: {error}") from error
        if dataset is None or dialog.dataset == dataset:
            dialogs.append(dialog)
    ids = Counter(d.id for d in dialogs)
    duplicated = [i for i, n in ids.items() if n > 1]
    if duplicated:
        raise ValueError(f"{path}: duplicated dialog ids {duplicated}")
    return dialogs


def suite_dialogs(dataset: str, *, known: bool = False) -> list[Dialog]:
    """The suite's dialogs for ``dataset``, or its known failures with ``known``."""
    if known:
        return load_dialogs(KNOWN_FAILURES, dataset) if KNOWN_FAILURES.exists() else []
    return load_dialogs(DIALOGS_DIR / f"{dataset}.jsonl", dataset)


class ChatDriver:
    """One ``shopagent chat --quiet`` in a pty, and the records its turns append to the log."""

    def __init__(self, dataset: str) -> None:
        self.tail = LogTail(default_log_path(load_settings().home))
        self.child = spawn_chat(dataset, extra=["--quiet"], timeout_s=TURN_TIMEOUT_S)
        self.conversation = first_prompt(self.child)
        self.turns_sent = 0
        self._records: list[dict[str, Any]] = []

    def reset(self) -> None:
        """``/reset``: a new conversation, so no filter or list carries into the next dialog."""
        self.child.sendline("/reset")
        self.child.expect(r"new conversation ([0-9a-f]+)")
        self.conversation = str(self.child.match.group(1))
        self.child.expect(PROMPT)
        self.turns_sent = 0

    def send(self, text: str) -> dict[str, Any] | None:
        """One shopper message, Enter to the next prompt; the turn's record (None if none)."""
        self.child.sendline(text)
        self.child.expect(PROMPT)
        self.turns_sent += 1
        return self._record(self.turns_sent)

    def close(self) -> None:
        quit_chat(self.child)

    def _record(self, turn: int) -> dict[str, Any] | None:
        """The record of this conversation's ``turn``: written before the prompt returns, so
        normally there at once; polled briefly in case the file system lags."""
        deadline = time.monotonic() + RECORD_WAIT_S
        while True:
            # Only this conversation's: the log is shared with every other chat in the home.
            self._records += [
                r for r in self.tail.new_records() if r.get("conversation_id") == self.conversation
            ]
            for record in self._records:
                if record.get("conversation_id") == self.conversation and (
                    int(record.get("turn", 0)) == turn
                ):
                    return record
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)


def run_dialog(driver: ChatDriver, dialog: Dialog) -> DialogResult:
    """Every turn of ``dialog`` in the driver's chat, each checked against what it expects."""
    result = DialogResult(dialog)
    last = len(dialog.turns)
    previous: dict[str, Any] | None = None
    for number, text in enumerate(dialog.turns, start=1):
        record = driver.send(text)
        seen = TurnSeen(text, record)
        expect = dialog.expect if number == last else dialog.turn_expect.get(number, {})
        if record is None:
            seen.failures.append("no trajectory record for this turn")
        elif expect:
            seen.failures += failed_checks(record, expect, previous)
        result.turns.append(seen)
        previous = record
    return result


def run_dataset(dataset: str, dialogs: Sequence[Dialog]) -> list[DialogResult]:
    """All ``dialogs`` in one chat process; a dialog the chat breaks on (a timeout, an exit)
    fails with the reason, and a fresh chat takes the next one."""
    results: list[DialogResult] = []
    driver: ChatDriver | None = None
    try:
        for dialog in dialogs:
            try:
                if driver is None:
                    driver = ChatDriver(dataset)
                else:
                    driver.reset()
                results.append(run_dialog(driver, dialog))
            except (pexpect.TIMEOUT, pexpect.EOF) as error:
                broke = f"the chat broke: {type(error).__name__}"
                results.append(DialogResult(dialog, error=broke))
                if driver is not None:
                    driver.child.close(force=True)
                driver = None
    finally:
        if driver is not None:
            driver.close()
    return results


def class_counts(results: Sequence[DialogResult]) -> dict[tuple[str, str], tuple[int, int]]:
    """(dataset, class) -> (passed, total)."""
    counts: dict[tuple[str, str], list[int]] = {}
    for result in results:
        key = (result.dialog.dataset, result.dialog.cls)
        passed_total = counts.setdefault(key, [0, 0])
        passed_total[0] += int(result.passed)
        passed_total[1] += 1
    return {key: (p, t) for key, (p, t) in sorted(counts.items())}


def counts_table(results: Sequence[DialogResult]) -> Table:
    """Per dataset and class: passed / total."""
    table = Table(title="dialogs passed per class", header_style="bold")
    for column in ("dataset", "class", "passed", "total"):
        table.add_column(column, justify="right" if column in ("passed", "total") else "left")
    for (dataset, cls), (passed, total) in class_counts(results).items():
        style = "" if passed == total else "red"
        table.add_row(literal(dataset), literal(cls), literal(str(passed), style), str(total))
    passed_all = sum(r.passed for r in results)
    table.add_row("all", "", str(passed_all), str(len(results)), style="bold")
    return table


def dialog_lines(result: DialogResult) -> list[str]:
    """A dialog as plain lines: each turn's message, what it showed, what failed."""
    dialog = result.dialog
    verdict = "pass" if result.passed else "FAIL"
    lines = [f"{verdict} {dialog.dataset} {dialog.id} ({dialog.cls})"]
    if result.error:
        lines.append(f"  {result.error}")
    for number, seen in enumerate(result.turns, start=1):
        lines.append(f"  turn {number}: you> {seen.text}")
        if seen.record is not None:
            stop = seen.record.get("stop_reason")
            reply = " ".join(str(seen.record.get("final_answer") or "").split())
            lines.append(f"    reply [{stop}]: {reply[:300]}")
            for product in shown(seen.record):
                price = product.get("price")
                lines.append(
                    f"    {product.get('position')}. {product.get('title')} · "
                    f"{product.get('brand') or '—'} · {'—' if price is None else price}"
                )
        lines += [f"    failed: {failure}" for failure in seen.failures]
    return lines


def report(
    results: Sequence[DialogResult], console: TerminalConsole, *, verbose: bool = False
) -> None:
    """The failures (every dialog with ``verbose``; catalog text printed literally), then the
    per-class table."""
    for result in results:
        if verbose or not result.passed:
            for line in dialog_lines(result):
                console.print(literal(line), soft_wrap=True)
    console.print(counts_table(results))


def select(dialogs: list[Dialog], ids: str | None, limit: int | None) -> list[Dialog]:
    """The dialogs named by ``ids`` (comma-separated ids, or one regular expression over the
    ids), then the first ``limit``: a few dialogs at a time while writing new ones."""
    if ids:
        wanted = {i.strip() for i in ids.split(",") if i.strip()}
        dialogs = [d for d in dialogs if d.id in wanted or re.fullmatch(ids, d.id)]
    return dialogs[:limit] if limit else dialogs


#: What a scratch home does not share with the user's: the trajectory log (scripted dialogs
#: are no shopper's episodes, and ``collect`` / ``export`` would learn from them) and the
#: conversations' checkpoints.
UNSHARED = frozenset({"trajectories", "conversations.sqlite"})


@contextmanager
def scratch_home() -> Iterator[Path]:
    """A temporary ``SHOPAGENT_HOME`` that links the user's models, indexes and data but
    keeps its own log and conversations; the user's home is left as it was."""
    real = load_settings().home
    before = os.environ.get("SHOPAGENT_HOME")
    with tempfile.TemporaryDirectory(prefix="shopagent-dialogs-") as scratch:
        home = Path(scratch)
        for entry in real.iterdir() if real.is_dir() else ():
            if entry.name not in UNSHARED:
                (home / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        os.environ["SHOPAGENT_HOME"] = str(home)
        try:
            yield home
        finally:
            if before is None:
                os.environ.pop("SHOPAGENT_HOME", None)
            else:
                os.environ["SHOPAGENT_HOME"] = before


def run_suite(
    datasets: Sequence[str] = DATASETS,
    *,
    limit: int | None = None,
    ids: str | None = None,
    known: bool = False,
) -> list[DialogResult]:
    """The suite over ``datasets``, one chat process per dataset, one after the other, in a
    scratch home (``scratch_home``)."""
    results: list[DialogResult] = []
    with scratch_home():
        for dataset in datasets:
            dialogs = select(suite_dialogs(dataset, known=known), ids, limit)
            if dialogs:
                results += run_dataset(dataset, dialogs)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dataset", choices=DATASETS, help="One dataset (default: both).")
    parser.add_argument("--limit", type=int, help="The first N dialogs of each dataset.")
    parser.add_argument("--ids", help="Only these dialog ids (comma-separated) or a regex.")
    parser.add_argument("--known", action="store_true", help="Run the known failures instead.")
    parser.add_argument("--verbose", action="store_true", help="Show passing dialogs too.")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    datasets = [args.dataset] if args.dataset else list(DATASETS)
    results = run_suite(datasets, limit=args.limit, ids=args.ids, known=args.known)
    console = TerminalConsole()
    report(results, console, verbose=args.verbose)
    console.print(literal(f"{len(results)} dialogs in {time.perf_counter() - started:.0f} s"))
    return 0 if results and all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
