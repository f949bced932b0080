"""The errors a user can cause or fix, as one family the CLI prints as one line.

Everything a shopper or operator can act on (a bad flag, a damaged file, a missing index or
model, a dead or hung backend) is a ``ShopagentError``: ``shopagent`` prints its message on
one line and exits 1. Any other exception is a bug: the CLI says so in one line and shows the
traceback with ``--debug``. Each subclass also derives from the builtin it refines
(``ValueError``, ``LookupError``, ``RuntimeError``), so callers that catch those keep working.
"""

from __future__ import annotations


class ShopagentError(Exception):
    """Something the user can fix; the message is one line that says what and how."""


class BadInput(ShopagentError, ValueError):
    """An argument, flag, file row or tool-call argument that cannot be used as given."""


class NotFound(ShopagentError, LookupError):
    """Something that must exist first: an index, a stored model, a dataset, a file."""


class BackendError(ShopagentError, RuntimeError):
    """A backend (search engine, vector store, model server) that failed, is down or hung."""


def one_line(error: BaseException, limit: int | None = 300) -> str:
    """An error as one line of at most ``limit`` characters: what a trace, a tool result or a
    progress file records. Whitespace runs collapse; an empty message falls back to the type."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if limit is None else text[:limit]
