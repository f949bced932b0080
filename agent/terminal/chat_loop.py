"""The terminal chat: reads lines (a TTY or a pipe), runs turns, renders events, takes /commands.

Kept apart from ``ChatSession`` so the session stays a plain library (tests, evals, RL) and
everything about terminals lives here. Nothing the shopper, the model or the catalog wrote is
printed as a string rich would parse: it goes through ``render.literal``/``styled`` (markup
printed as written, terminal controls made visible), and input lines are made valid Unicode
(an undecodable byte becomes U+FFFD) before a turn sees them.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from agent.conversation.session import ChatSession
from agent.conversation.state import (
    AgentLimits,
    ChatEvent,
    FinalAnswer,
    Notice,
    ProductsShown,
    ShownProduct,
    TextChunk,
    ToolCallFinished,
    ToolCallStarted,
)
from agent.runtime.model_server import kill_running_servers
from agent.terminal.command_options import warn_if_stale
from agent.terminal.render import catalog_text, clipped, literal, styled, warning_line
from tools.errors import BackendError, ShopagentError, one_line
from tools.search.chroma_build_state import BuildStatus, read_status
from tools.settings.config import Settings
from tools.text import valid_text

HELP = """commands:
  /like N     you like product N of the last answer (feedback becomes reward)
  /buy N      you buy product N of the last answer (the strongest reward)
  /filters    what the search keeps to (product, features, brand, price) and how it searches
  /filters W  change them with words: /filters under 30 only Logitech not HP
  /clear      drop every filter (saying "start over" does the same)
  /reset      start a new conversation
  /history    the turns of this conversation
  /help       this text
  /quit       leave (Ctrl-D works too)"""

PROMPT = "you> "


def shown_products_table(products: list[ShownProduct]) -> Table:
    """Title, brand, price and id — prices and brands as the catalog has them."""
    table = Table(header_style="bold")
    table.add_column("#", justify="right", style="dim")
    table.add_column("title", overflow="fold", max_width=70)
    table.add_column("brand")
    table.add_column("price", justify="right")
    table.add_column("id", style="dim")
    for product in products:
        table.add_row(
            str(product.position),
            catalog_text(product.title),
            catalog_text(product.brand or "—"),
            literal("—" if product.price is None else product.price),
            catalog_text(product.id),
        )
    return table


#: Seconds a leaving chat waits for its background warm-up (the indexes, the sentence model).
WARM_UP_JOIN_S = 60.0


def finish_warm_up(thread: threading.Thread) -> None:
    """Wait for a warm-up thread before the process exits. Why: a chat quit within seconds of
    starting left ONNX Runtime and tantivy loading in a daemon thread while Python finalized,
    and the process died of a segmentation fault after ``/quit`` (seen once in a clean-clone
    run of ``tests/test_hostile_utf8.py``)."""
    thread.join(timeout=WARM_UP_JOIN_S)


class ChatLoop:
    def __init__(
        self,
        session: ChatSession,
        console: Console,
        *,
        quiet: bool = False,
        warm_up: bool = False,
        concept_build: Callable[[], BuildStatus | None] | None = None,
        search: str | None = None,
    ) -> None:
        self.session = session
        self.console = console
        self.quiet = quiet
        #: The dataset's search in one line (``tools.settings.search_choice.ChatSearch.line``):
        #: shown on the first screen and by ``/filters``.
        self.search = search
        #: Open the indexes and warm the model in the background while the shopper types the
        #: first message (``ChatSession.warm_up``).
        self.warm_up = warm_up
        #: The background concept build's status, read when the shopper leaves.
        self.concept_build = concept_build

    def run(self, lines: Iterator[str]) -> None:
        self.console.print(
            styled(
                ("shopagent", "bold"),
                f" · conversation {self.session.conversation_id} · /help for commands",
            )
        )
        if self.search:
            self.console.print(literal(self.search, "dim"))
        warming = self.session.warm_up() if self.warm_up else None
        for raw in lines:
            line = raw.strip()
            if not line:
                continue
            if line.startswith("/"):
                if not self.command(line):
                    break
                continue
            self.turn(line)
        self._leaving()
        if warming is not None:
            finish_warm_up(warming)

    def _leaving(self) -> None:
        """On /quit or end of input: say so if the concept index is still being built, since
        the shopper may think leaving stops it (it does not: the builder is detached)."""
        status = self.concept_build() if self.concept_build is not None else None
        if status is not None and status.running:
            progress = f"{status.percent}%" if status.total else "starting"
            self.console.print(
                literal(
                    f"the concept index is still building in the background ({progress}); "
                    "it goes on after you quit",
                    "dim",
                )
            )

    def command(self, line: str) -> bool:
        """Run one /command; False means leave."""
        name, _, argument = line.partition(" ")
        handlers: dict[str, Callable[[str], bool]] = {
            "/quit": lambda _: False,
            "/exit": lambda _: False,
            "/help": self._help,
            "/reset": self._reset,
            "/history": self._history,
            "/like": lambda arg: self._feedback("like", arg),
            "/buy": lambda arg: self._feedback("buy", arg),
            "/filters": self._filters,
            "/clear": self._clear,
        }
        handler = handlers.get(name.lower())
        if handler is None:
            self.console.print(styled((f"unknown command {name}", "red"), " — /help lists them"))
            return True
        try:
            return handler(argument.strip())
        except (sqlite3.Error, OSError) as error:  # the conversation store or the log
            self.console.print(literal(not_saved(error, name.lower()), "red"))
            return True

    def turn(self, text: str) -> None:
        streamed: list[str] = []
        with exit_on_interrupt():
            try:
                for event in self.session.send(text):
                    self.render(event, streamed)
            except (ValueError, ShopagentError) as error:  # a bad message or a backend down
                self.console.print(literal(error, "red"))
            except (sqlite3.Error, OSError) as error:  # a full disk: the chat goes on
                self.console.print(literal(not_saved(error, "this turn"), "red"))

    def render(self, event: ChatEvent, streamed: list[str]) -> None:
        if isinstance(event, TextChunk):
            # The model's draft is never shown: until the grounding checks have run on the
            # whole reply, it may carry what catalog text injected (a false price, a product
            # the search never returned). Only that it is writing is said, once.
            if not streamed and not self.quiet:
                self.console.print(literal("assistant is writing…", "dim"))
            streamed.append(event.text)
        elif isinstance(event, ToolCallStarted):
            streamed.clear()
            if not self.quiet:
                arguments = json.dumps(event.arguments, ensure_ascii=False)
                self.console.print(styled((f"→ {event.name}", "cyan"), " ", arguments))
        elif isinstance(event, ToolCallFinished):
            if not self.quiet:
                self.console.print(_tool_outcome(event))
        elif isinstance(event, ProductsShown):
            pass  # the final answer carries the same list; shown once, with the answer
        elif isinstance(event, FinalAnswer):
            self.console.print(
                styled(("assistant>", "bold green"), " ", event.text, multiline=True)
            )
            if event.filters and event.products:
                self.console.print(literal(f"searched: {event.filters}", "dim"))
            if event.products:
                self.console.print(shown_products_table(event.products))
                self.console.print(literal("/like N or /buy N to give feedback", "dim"))
            if event.violations and not self.quiet:
                removed = f"({len(event.violations)} ungrounded claim(s) removed)"
                self.console.print(literal(removed, "dim"))
        elif isinstance(event, Notice):
            self.console.print(literal(event.text, "yellow"))

    def _help(self, _: str) -> bool:
        self.console.print(literal(HELP, multiline=True))
        return True

    def _reset(self, _: str) -> bool:
        conversation = self.session.reset()
        self.console.print(styled(f"new conversation {conversation}"))
        return True

    def _history(self, _: str) -> bool:
        turns = self.session.history()
        if not turns:
            self.console.print("no turns yet")
        for summary in turns:
            self.console.print(styled((f"{summary.turn}. you>", "bold"), " ", summary.user_text))
            self.console.print(styled("   assistant> ", summary.answer, multiline=True))
            for product in summary.products:
                price = product.price or "—"
                self.console.print(
                    styled(f"     {product.position}. ", clipped(product.title), f" · {price}")
                )
        return True

    def _filters(self, argument: str) -> bool:
        """``/filters`` shows the constraints; ``/filters WORDS`` folds WORDS into them."""
        if argument:
            constraints = self.session.edit_filters(valid_text(argument))
        else:
            constraints = self.session.filters()
        line = constraints.describe() or "none yet (tell me what you are looking for)"
        self.console.print(styled("filters: ", line))
        if self.search:
            self.console.print(literal(self.search, "dim"))
        return True

    def _clear(self, _: str) -> bool:
        self.session.clear_filters()
        self.console.print(literal("filters cleared"))
        return True

    def _feedback(self, kind: str, argument: str) -> bool:
        if not argument.isdigit():
            usage = f"usage: /{kind} N (a product number from the last answer)"
            self.console.print(literal(usage, "red"))
            return True
        try:
            result = (self.session.buy if kind == "buy" else self.session.like)(int(argument))
        except ValueError as error:
            self.console.print(literal(error, "red"))
            return True
        verb = "bought" if kind == "buy" else "liked"
        self.console.print(
            styled(
                f"{verb} ",
                clipped(result.product.title),
                f" ({result.product.price or '—'}) · ",
                f"episode reward {result.reward:+.2f} ({result.reward_change:+.2f})",
            )
        )
        return True


def not_saved(error: BaseException, what: str) -> str:
    """One line for a turn or command the conversation store (SQLite) or the trajectory log
    could not write: the chat goes on, and the shopper learns what was lost and why.

    A full disk once ended the chat with ``unexpected OperationalError: database or disk is
    full``: the checkpointer writes every step of a turn.
    """
    detail = one_line(error, 200)
    if getattr(error, "errno", None) == errno.ENOSPC or "full" in detail.lower():
        return f"the disk is full: {what} was not saved ({detail})"
    if isinstance(error, sqlite3.Error):
        return f"the conversation store failed: {what} was not saved ({detail})"
    return f"{what} failed: {detail}"


def _tool_outcome(event: ToolCallFinished) -> Text:
    if event.ok:
        via = f" via {event.fallback}" if event.fallback else ""
        return literal(
            f"  ✓ {len(event.product_ids)} products{via} in {event.took_ms:.0f} ms", "dim"
        )
    return literal(f"  ✗ {event.name} failed: {event.error}", "yellow")


INTERRUPTED = b"\ninterrupted: turn cancelled, closing the chat\n"


@contextmanager
def exit_on_interrupt() -> Iterator[None]:
    """During a turn, Ctrl-C ends the chat at once, with a message.

    LangGraph runs a node in a worker thread and, on the way out of a stream, waits for it: a
    ``KeyboardInterrupt`` would reach the chat only when the model request in flight ended
    (the turn's deadline, tens of seconds). So for the turn's length Ctrl-C has its own
    handler: say so, kill the model server this chat started, and leave. Nothing acknowledged
    is lost: every trajectory record was fsynced when written, the cancelled turn has none,
    and SQLite's journal undoes a checkpoint write cut short. At the prompt, Ctrl-C is the
    ordinary ``KeyboardInterrupt``.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, frame: FrameType | None) -> None:
        os.write(sys.stdout.fileno(), INTERRUPTED)
        kill_running_servers()
        os._exit(130)

    previous = signal.signal(signal.SIGINT, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def input_lines(console: Console, stream: TextIO = sys.stdin) -> Iterator[str]:
    """Prompted lines on a terminal; plain lines from a pipe (scripts and tests).

    Every line is valid Unicode when it leaves here: bytes that are not UTF-8 arrive as lone
    surrogates (Python's ``surrogateescape``) and become U+FFFD, so a turn can still be sent
    to the model and logged as JSON. A strict stream is switched to replacing such bytes, since
    under a UTF-8 locale it would raise ``UnicodeDecodeError`` instead.
    """
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="replace")
    if stream.isatty():
        while True:
            try:
                yield valid_text(console.input(styled((PROMPT, "bold"))))
            except EOFError:
                return
    else:
        for line in stream:
            line = valid_text(line)
            console.print(styled(PROMPT, line.rstrip()))
            yield line


def run_chat(
    settings: Settings,
    dataset: str,
    console: Console,
    *,
    limits: AgentLimits | None = None,
    conversation_id: str | None = None,
    quiet: bool = False,
) -> None:
    """``shopagent chat``: check the index, start the model (unless an endpoint is configured),
    open the session and chat on stdin until /quit or end of input."""
    from agent.runtime.llm_client import chat_model
    from agent.runtime.model_server import llm_endpoint
    from agent.runtime.model_store import served_writer_style
    from tools.concept_build import concept_search_notice, resume_stopped_build
    from tools.search_tools import SearchToolbox
    from tools.settings.search_choice import chat_search
    from tools.stores import open_lexical

    open_lexical(settings, dataset)  # a missing index is reported before a model starts
    warn_if_stale(settings, dataset)
    resume_stopped_build(settings, dataset)  # a killed background build carries on
    search = chat_search(settings, dataset)  # keywords, or fused with concepts where measured
    if search.warning:
        warning_line(search.warning)
    limits = limits or AgentLimits()
    # The search side opens (the concept index and its sentence model take seconds) while the
    # model server starts, not after it; the session's warm-up then finds it open.
    toolbox = SearchToolbox(settings, dataset)
    warming = threading.Thread(target=toolbox.warm, name="warm-search", daemon=True)
    warming.start()
    with ExitStack() as stack:
        with console.status(styled(f"starting {settings.llm.model}…")):
            llm = stack.enter_context(llm_endpoint(settings))
        try:
            session = stack.enter_context(
                ChatSession.open(
                    settings,
                    dataset,
                    chat_model(llm, turn_timeout_s=limits.turn_timeout_s),
                    toolbox=toolbox,
                    limits=limits,
                    conversation_id=conversation_id,
                    model_checkpoint=llm.model,
                    writer_style=served_writer_style(settings),  # type: ignore[arg-type]
                    fuse_concepts=search.fuse_concepts,
                )
            )
        except sqlite3.Error as error:  # a full disk or a read-only home
            raise BackendError(
                f"cannot open the conversations in {settings.home} ({one_line(error, 200)}): "
                "free disk space there, or make it writable"
            ) from error
        notice = concept_search_notice(settings, dataset)
        if notice:
            console.print(styled((notice, "dim")))
        loop = ChatLoop(
            session,
            console,
            quiet=quiet,
            warm_up=True,
            concept_build=lambda: read_status(settings.index_dir(dataset)),
            search=search.line,
        )
        try:
            loop.run(input_lines(console))
            finish_warm_up(warming)
        except KeyboardInterrupt:
            # Said at once: closing the session and stopping the model server come after.
            console.print(styled(("interrupted", "yellow"), ": turn cancelled, closing the chat"))
            raise SystemExit(130) from None
