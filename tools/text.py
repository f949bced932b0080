"""Text that is not ours, made safe: for Unicode at the input boundary, and for a terminal.

Shopper input, catalog fields, model replies and error messages all reach the terminal, and
any of them may hold what a terminal acts on instead of showing: ``ESC[2J`` clears the
screen, ``ESC]0;`` retitles the window, a bidi override (U+202E) reverses what follows, a
lone surrogate (an undecodable byte from argv or a pipe) makes encoders raise. Two functions,
one per boundary:

- ``valid_text``: text coming in (argv, stdin) as valid Unicode; undecodable bytes, which
  Python hands over as lone surrogates, become U+FFFD, so nothing downstream (tokenizers,
  JSON logs, HTTP clients) meets a string it cannot encode.
- ``safe_text``: text going out to a terminal; every character a terminal could act on is
  shown as a visible escape (``\\x1b``, ``\\u202e``) instead, so what is printed is exactly
  what the text holds, never an instruction to the terminal.

Rich markup (``[bold]``) is not this module's concern: the terminal layer prints such text
as ``rich.text.Text`` objects, which are never parsed for markup.
"""

from __future__ import annotations

import re

#: Characters that steer a terminal or the text's direction instead of being shown: all
#: C0 and C1 controls and DEL, the line and paragraph separators, and the bidi controls; and
#: the invisible ones, which show nothing where there is something (zero-width space, joiner
#: and non-joiner, word joiner and the invisible operators, the BOM): "Log\u200bitech" looks
#: like "Logitech" and is not.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u2069\ufeff]"
)
_UNSAFE_MULTILINE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u061c\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff]"
)
ELLIPSIS = "…"
#: The start of a ``\\xNN`` or ``\\uNNNN`` escape left at the end of a cut.
_PARTIAL_ESCAPE = re.compile(r"\\(x[0-9a-f]?|u[0-9a-f]{0,3})?$")
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def valid_text(text: str) -> str:
    """``text`` with every lone surrogate (an undecodable input byte) replaced by U+FFFD."""
    return _SURROGATE.sub(REPLACEMENT, text)


def safe_text(text: object, *, multiline: bool = False, limit: int | None = None) -> str:
    """``text`` as a terminal should show it: controls, bidi overrides and invisible
    characters as visible escapes.

    A tab becomes a space (it only aligns); with ``multiline`` a ``\\n`` is kept (a reply may
    have paragraphs) and ``\\r\\n`` counts as one; otherwise a line break shows as ``\\n``, so
    a table cell or an error line stays one line. Lone surrogates become U+FFFD. With
    ``limit``, at most ``limit`` characters are kept, and "…" marks a cut.
    """
    value = text if isinstance(text, str) else str(text)
    cut = limit is not None and len(value) > limit
    if limit is not None:
        value = value[:limit]  # before the escapes, so a huge text costs only what is shown
    value = valid_text(value).replace("\t", " ")
    if multiline:
        value = value.replace("\r\n", "\n")
    pattern = _UNSAFE_MULTILINE if multiline else _UNSAFE
    value = pattern.sub(_visible, value)
    if limit is not None and len(value) > limit:  # escapes made it longer: cut, not mid-escape
        value, cut = _PARTIAL_ESCAPE.sub("", value[:limit]), True
    return value + ELLIPSIS if cut else value


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
