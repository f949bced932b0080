"""Every file and folder shopagent replaces is replaced atomically, one way.

A reader (another process, or the same one after a crash) sees the old file or the new one,
never half of one: the bytes go to a temporary file *in the same folder* (``os.replace`` is
atomic only within one file system), are ``fsync``-ed, the file gets mode 0644 (``mkstemp``
makes it private, but reports, manifests and runs are meant to be read by others), and it is
renamed over the target; the folder is then ``fsync``-ed so the rename itself survives a
power cut. On any failure, the temporary file is removed and the old file is left as it was.

Three forms of one rule: ``write_text`` / ``write_bytes`` for content in memory,
``atomic_open`` for a stream written line by line, and ``atomic_path`` for a library that
wants a path to write to (pyarrow, matplotlib). ``replace_directory`` swaps a folder built
beside its target (a dataset, a stored model, a training run) into place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o644


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path beside ``path``; it replaces ``path`` when the block ends cleanly."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_directory(target.parent)


@contextmanager
def atomic_open(path: Path | str, mode: str = "w") -> Iterator[IO[Any]]:
    """A handle on a temporary file beside ``path`` (text is UTF-8); replaces ``path`` on a
    clean exit, so a stream that fails half-way (a bad checksum, a crash) leaves no trace."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a new file: mode 'w' or 'wb', not {mode!r}")
    with atomic_path(path) as tmp:
        encoding = None if mode == "wb" else "utf-8"
        with open(tmp, mode, encoding=encoding) as handle:
            yield handle


def write_text(path: Path | str, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8), atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def write_bytes(path: Path | str, data: bytes) -> None:
    """Replace ``path`` with ``data``, atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def replace_directory(built: Path, target: Path) -> None:
    """Swap the finished folder ``built`` (a sibling of ``target``) in as ``target``.

    A folder cannot be renamed over a non-empty one, so an existing ``target`` is first moved
    aside under a hidden name and deleted after the swap: at every moment ``target`` is the
    whole old folder, the whole new one, or (between two renames) absent, never a mix.
    """
    if not target.exists():
        os.replace(built, target)
    else:
        aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, aside)
        os.replace(built, target)
        shutil.rmtree(aside, ignore_errors=True)
    fsync_directory(target.parent)


def fsync_directory(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse to fsync a folder; the data itself was synced
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
