"""Issue 15, item 1: text that is not ours (catalog titles, shopper input, model replies) is
printed literally: rich markup shown as written, terminal controls shown as visible escapes.

Through the CLI in a real pseudo-terminal (colours on, so rich writes escape codes of its own)
and as a hypothesis property over any text, surrogates and control characters included.
"""

from __future__ import annotations

import io
import os
import re
import sys
import unicodedata
from decimal import Decimal
from pathlib import Path

import pexpect
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from agent.conversation.state import FinalAnswer, ShownProduct, TextChunk, ToolCallFinished
from agent.terminal.chat_loop import ChatLoop, input_lines
from agent.terminal.render import error_line, products_table
from tests.hostile_helpers import (
    PROJECT_ROOT,
    http_server,
    import_catalog,
    openai_handler,
    shopagent,
    write_jsonl,
)
from tools.catalog.product import Product
from tools.search.request import SearchRequest
from tools.search.results import SearchHit
from tools.search.tantivy_backend import TantivyIndex
from tools.text import safe_text, valid_text

STRAY_CLOSE = "Mouse with a [/] stray close"
FAKE_STYLE = "[bold red]FREE MOUSE[/bold red] [link=http://evil.example]click here[/link]"
CLEAR_SCREEN = "Mouse \x1b[2J clears the screen"
RETITLE = "Mouse \x1b]0;pwned\x07 retitles"
BIDI = "Mouse \u202etxt.exe"
#: Escape sequences rich itself writes: colours (SGR) and nothing else.
_SGR = re.compile(r"\x1b\[[0-9;]*m")


def terminal_text(raw: str) -> str:
    """What a terminal would show as text: rich's own colour codes removed."""
    return _SGR.sub("", raw)


def assert_no_terminal_controls(raw: str) -> None:
    shown = terminal_text(raw)
    assert "\x1b" not in shown, repr(shown)
    bad = [c for c in shown if c not in "\n\r" and unicodedata.category(c) in ("Cc", "Cs")]
    assert not bad, bad
    assert "\u202e" not in shown


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("hostile-terminal")
    catalog = write_jsonl(
        home.parent / "hostile.jsonl",
        [
            {"id": "h1", "title": STRAY_CLOSE, "brand": "[/]", "price": "9.99"},
            {"id": "h2", "title": FAKE_STYLE, "brand": "Acme", "price": "1.00"},
            {"id": "h3", "title": CLEAR_SCREEN, "brand": "Acme", "price": "2.00"},
            {"id": "h4", "title": RETITLE, "brand": "Acme", "price": "3.00"},
            {"id": "h5", "title": BIDI, "brand": "Acme", "price": "4.00"},
        ],
    )
    assert import_catalog(home, catalog, "jsonl", "hostile").returncode == 0
    built = shopagent(home, "index", "--dataset", "hostile", "--no-concepts")
    assert built.returncode == 0, built.stderr
    return home


def test_search_table_in_a_real_terminal_prints_titles_literally(hostile_home: Path) -> None:
    env = {**os.environ, "SHOPAGENT_HOME": str(hostile_home), "TERM": "xterm-256color"}
    env.pop("SHOPAGENT_ES_URL", None)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cli", "search", "mouse", "--dataset", "hostile"],
        cwd=str(PROJECT_ROOT),
        env=env,
        encoding="utf-8",
        timeout=120,
        dimensions=(60, 250),
    )
    child.expect(pexpect.EOF)
    child.close()
    raw = child.before
    assert child.exitstatus == 0, raw
    assert "Traceback" not in raw and "MarkupError" not in raw
    shown = terminal_text(raw)
    assert "\x1b]8;" not in raw  # no hidden hyperlink
    assert_no_terminal_controls(raw)
    assert STRAY_CLOSE in shown, shown
    # 74 characters fold in the 70-wide title column: both halves are there, as written
    assert "[bold red]FREE MOUSE[/bold red] [link=http://evil.example]click" in shown
    assert "here[/link]" in shown
    assert r"Mouse \x1b[2J clears the screen" in shown
    assert r"Mouse \x1b]0;pwned\x07 retitles" in shown
    assert r"Mouse \u202etxt.exe" in shown


def test_chat_prints_shopper_and_model_markup_literally(hostile_home: Path) -> None:
    # A reply the grounding keeps (the unchecked draft is never printed, so the markup must
    # survive into the checked reply to be seen at all).
    reply = "[bold red]Here[/bold red] [/] \x1b[2J you go."
    with http_server(openai_handler(reply)) as url:
        result = shopagent(
            hostile_home,
            "chat",
            "--dataset",
            "hostile",
            stdin=b"[/]\n[link=http://evil.example]x[/link]\n/quit\n",
            env={"SHOPAGENT_LLM_BASE_URL": url, "SHOPAGENT_LLM_MODEL": "fake", "TERM": "dumb"},
        )
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert b"Traceback" not in result.stderr and b"MarkupError" not in result.stderr
    assert "you> [/]" in out
    assert "you> [link=http://evil.example]x[/link]" in out
    assert "[bold red]Here[/bold red] [/]" in out
    assert "\x1b" not in out


def test_an_error_message_holding_markup_is_one_literal_line(hostile_home: Path) -> None:
    result = shopagent(hostile_home, "search", "mouse", "--dataset", "[/]bad\x1b[2J")
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert "[/]bad" in lines[0] and "\x1b" not in lines[0]


# -- properties: any text, printed literally ------------------------------------------------

ANY_TEXT = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()),  # surrogates included
    max_size=24,
)
MARKUP_TEXT = st.lists(
    st.sampled_from(["[", "]", "[/]", "[bold]", "[link=x]", "\x1b[2J", "\x1b]0;", "\x07", ":x:"])
    | ANY_TEXT,
    max_size=4,
).map("".join)
HOSTILE = ANY_TEXT | MARKUP_TEXT


def console(color: bool) -> Console:
    return Console(
        file=io.StringIO(),
        width=400,
        force_terminal=color,
        color_system="truecolor" if color else None,
        legacy_windows=False,
    )


@settings(max_examples=150, deadline=None)
@given(HOSTILE)
def test_safe_text_is_literal_and_control_free(text: str) -> None:
    safe = safe_text(text)
    assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in safe)
    assert not set(safe) & {"\u202e", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069"}
    safe.encode("utf-8")  # never a lone surrogate
    steering = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    plain = all(unicodedata.category(c) not in ("Cc", "Cs", "Zl", "Zp") for c in text)
    if plain and not set(text) & steering:
        assert safe == text  # ordinary text is untouched, markup included


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(title=HOSTILE, brand=HOSTILE, color=st.booleans())
def test_products_table_prints_any_title_literally(title: str, brand: str, color: bool) -> None:
    assume(title.strip() and 0 < cell_len(safe_text(title)) <= 60)
    product = Product(id="p1", title=title, brand=brand, price=Decimal("1.5"))
    out = console(color)
    out.print(products_table([SearchHit(product=product, score=1.0, rank=1)]))
    raw = out.file.getvalue()  # type: ignore[attr-defined]
    assert_no_terminal_controls(raw)
    assert safe_text(title) in terminal_text(raw)


@settings(max_examples=100, deadline=None)
@given(answer=HOSTILE, title=HOSTILE, draft=HOSTILE, error=HOSTILE, color=st.booleans())
def test_chat_reply_rendering_prints_any_text_literally(
    answer: str, title: str, draft: str, error: str, color: bool
) -> None:
    out = console(color)
    loop = ChatLoop(session=None, console=out)  # type: ignore[arg-type]
    shown = ShownProduct(position=1, id="p1", title=title or "t", brand=title, price="1.00")
    streamed: list[str] = []
    loop.render(TextChunk(draft), streamed)
    loop.render(ToolCallFinished("c1", "search_products", False, [], 1.0, error=error), streamed)
    loop.render(FinalAnswer(answer, [shown], "answered", "e1", 0.0), streamed)
    raw = out.file.getvalue()  # type: ignore[attr-defined]
    assert_no_terminal_controls(raw)
    text = terminal_text(raw)
    for line in safe_text(answer, multiline=True).splitlines():
        assert line.rstrip() in text


@settings(max_examples=60, deadline=None)
@given(HOSTILE)
def test_error_lines_print_any_text_as_one_literal_line(text: str) -> None:
    stream = io.StringIO()
    from agent.terminal import render

    saved = render.errors
    render.errors = Console(file=stream, width=100_000, force_terminal=False)
    try:
        error_line(text)
    finally:
        render.errors = saved
    raw = stream.getvalue()
    assert raw.count("\n") == 1 and raw.startswith("error: ")
    assert_no_terminal_controls(raw)


def index_products() -> list[Product]:
    from tests.catalog_samples import sample_products

    return sample_products()


@pytest.fixture(scope="module")
def index() -> TantivyIndex:
    built = TantivyIndex(None, create=True)
    built.index(index_products())
    return built


def test_the_index_finds_its_own_products(index: TantivyIndex) -> None:
    """The property below can only fail on a search that finds something: this one does."""
    first = index_products()[0]
    assert first.id in index.search(SearchRequest(first.title)).ids


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(HOSTILE)
def test_any_search_query_runs_and_any_shopper_line_is_valid_unicode(
    index: TantivyIndex, text: str
) -> None:
    request = SearchRequest(valid_text(text))
    results = index.search(request)
    # any text searches to a well-formed ranking: hits numbered 1..n within the size asked,
    # each a distinct product of the index, never more hits than the total it counts
    assert [hit.rank for hit in results.hits] == list(range(1, len(results.hits) + 1))
    assert len(results.hits) <= request.size
    assert len(set(results.ids)) == len(results.ids)
    assert set(results.ids) <= {product.id for product in index_products()}
    assert results.total is None or results.total >= len(results.hits)
    raw = text.encode("utf-8", "surrogatepass")
    out = console(False)
    lines = list(input_lines(out, io.TextIOWrapper(io.BytesIO(raw + b"\n"), encoding="utf-8")))
    for line in lines:
        line.encode("utf-8")  # what the log and the model server will need
    assert_no_terminal_controls(out.file.getvalue())  # type: ignore[attr-defined]
