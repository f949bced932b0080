"""Reading a file a user named, with bounds: the one place that decides what may be read.

A path on the command line can be anything: ``/dev/zero`` (endless bytes), a FIFO (blocks
forever), a folder, or a regular file with one gigantic line. Reading any of those "line by
line" grows memory without bound until the kernel kills the process. Here a named file must be
a regular file, and lines are read with a cap, so the worst a hostile file can do is cost one
reported line.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from tools.errors import BadInput, NotFound

#: No record shopagent writes comes near this; a longer line is damage, not data.
MAX_LINE_BYTES = 16 << 20
_SKIP_CHUNK = 1 << 20


def regular_file(path: Path, what: str) -> Path:
    """``path`` if it is a regular file (after links); otherwise a one-line error naming it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise NotFound(f"{what} {path}: no such file") from None
    except OSError as error:
        raise BadInput(f"{what} {path}: cannot be read ({error.strerror or error})") from None
    if stat.S_ISDIR(mode):
        raise BadInput(f"{what} {path} is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise BadInput(f"{what} {path} is not a regular file (a device, pipe or socket)")
    return path


def bounded_lines(
    handle: BinaryIO, max_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, line)`` for each line of ``handle``; ``None`` for a line longer than
    ``max_bytes``, whose bytes are skipped in chunks (never held whole)."""
    number = 0
    while True:
        line = handle.readline(max_bytes + 1)
        if not line:
            return
        number += 1
        if len(line) <= max_bytes or line.endswith(b"\n"):
            yield number, line
            continue
        while True:  # the rest of an over-long line, discarded
            rest = handle.readline(_SKIP_CHUNK)
            if not rest or rest.endswith(b"\n"):
                break
        yield number, None
