"""The one rule for names that become folder names: stored models, training runs, shipped
policies and datasets.

A name is one path component that every filesystem and URL accepts as written: a letter or
digit, then letters, digits, ``.``, ``_`` or ``-``, 64 characters at most. So no name can reach
outside its folder (no ``/``, no leading ``.``), and a run's name can become the stored model's.
"""

from __future__ import annotations

import re

from tools.errors import BadInput

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_name(kind: str, name: str, note: str = "") -> None:
    """Refuse ``name`` as a ``kind`` name (``"model"``, ``"run"``...) unless it is safe;
    ``note`` is added to the message (why the name matters there)."""
    if not SAFE_NAME.fullmatch(name or ""):
        extra = f" ({note})" if note else ""
        raise BadInput(
            f"bad {kind} name {name!r}: use letters, digits, '.', '_' or '-' (64 at most), "
            f"starting with a letter or digit{extra}"
        )
