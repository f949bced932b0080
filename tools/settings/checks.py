"""What a setting may hold, checked the same way wherever it comes from.

A value from ``config.toml``, a ``SHOPAGENT_*`` variable or a command-line flag passes the same
check here, and a value that fails is one ``BadInput`` line naming where it came from (the
file and key, the variable, the flag) and what it must be. Numbers must be finite and in
range: ``SHOPAGENT_LLM_TIMEOUT=nan`` or ``--turn-timeout inf`` used to be accepted and then
failed every chat turn (or raised ``cannot convert float NaN to integer``), and ``1e308``
seconds overflowed the socket layer. URLs must parse: ``http://[::1`` used to reach the HTTP
clients and fail there as a bug.

Each converter raises ``ValueError`` with a message that reads after the setting's name
(``must be > 0 …, got nan``); ``checked`` and ``flag_value`` turn it into the one line.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from tools.errors import BadInput

_T = TypeVar("_T")

#: The longest any one wait may be (a request, a chat turn): a day. Longer values are typos
#: (``1e308``), and past about 1e9 seconds the socket layer overflows.
MAX_SECONDS = 86_400.0
#: OpenAI's range for sampling temperature; local sampling gains nothing beyond it either.
MAX_TEMPERATURE = 2.0


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist = 2, 80, 80, 4


def shown(value: Any) -> str:
    """``repr(value)`` for an error line: short, and safe for any depth (a list nested 2,000
    deep from ``config.toml`` would make ``repr`` itself raise ``RecursionError``)."""
    return _REPR.repr(value)


def checked(source: str, name: str, convert: Callable[[Any], _T], value: Any) -> _T:
    """``convert(value)``, or ``BadInput("SOURCE: NAME must be …, got …")``."""
    try:
        return convert(value)
    except (TypeError, ValueError) as error:
        raise BadInput(f"{source}: {name} {error}") from None


def flag_value(flag: str, convert: Callable[[Any], _T], value: Any) -> _T:
    """``convert(value)`` for a command-line flag, or ``BadInput("--FLAG must be …")``."""
    try:
        return convert(value)
    except (TypeError, ValueError) as error:
        raise BadInput(f"{flag} {error}") from None


def number(
    low: float,
    high: float,
    *,
    integer: bool = False,
    above_low: bool = False,
    unit: str = "",
) -> Callable[[Any], Any]:
    """A converter to a finite number in ``[low, high]`` (``(low, high]`` with ``above_low``);
    with ``integer`` a whole number (``3.0`` is 3, ``1.5`` is refused)."""

    lowest = f"> {_bound(low)}" if above_low else f">= {_bound(low)}"
    most = f"{_bound(high)} {unit}" if unit else _bound(high)
    span = f"{lowest} and at most {most}"

    def convert(value: Any) -> float | int:
        kind = "an integer" if integer else "a number"
        if isinstance(value, bool):
            raise ValueError(f"must be {kind} {span}, got {shown(value)}")
        try:
            parsed = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"must be {kind} {span}, got {shown(value)}") from None
        if not math.isfinite(parsed):
            raise ValueError(f"must be a finite number {span}, got {shown(value)}")
        if integer:
            whole = parsed.is_integer()
            if whole and isinstance(value, str):
                try:
                    int(value.strip())
                except ValueError:
                    whole = False
            if not whole:
                raise ValueError(f"must be an integer {span}, got {shown(value)}")
        too_low = parsed <= low if above_low else parsed < low
        if too_low or parsed > high:
            raise ValueError(f"must be {span}, got {shown(value)}")
        return int(parsed) if integer else parsed

    return convert


def _bound(bound: float) -> str:
    return f"{bound:g}" if not float(bound).is_integer() else f"{int(bound)}"


#: Seconds of a wait: above 0, at most a day.
seconds = number(0.0, MAX_SECONDS, above_low=True, unit="seconds")
#: A sampling temperature: 0 (greedy) to 2.
temperature = number(0.0, MAX_TEMPERATURE)


def text(value: Any) -> str:
    """A non-empty string, stripped."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {shown(value)}")
    return value.strip()


def url(value: Any) -> str:
    """An ``http://`` or ``https://`` URL with a host and, if any, a valid port."""
    address = text(value) if isinstance(value, str) else None
    if address is None:
        raise ValueError(f"must be an http:// or https:// URL, got {shown(value)}")
    if not address.lower().startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https://, got {shown(address)}")
    try:
        parts = urlsplit(address)
        host = parts.hostname
        _ = parts.port  # raises on a port that is not a number in 0..65535
    except ValueError as error:
        raise ValueError(f"is not a valid URL ({error}), got {shown(address)}") from None
    if not host:
        raise ValueError(f"has no host name, got {shown(address)}")
    return address


def path_text(value: Any) -> str:
    """A path as a non-empty string (the file's TOML, the environment)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a path, got {shown(value)}")
    return value
