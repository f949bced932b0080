"""Where a concept index build stands: a lock file held by the builder and a progress file.

Embedding a catalog takes minutes on a small CPU, so ``make chat`` builds the concept index
in a detached process while the shopper already chats on the lexical index. Two files in
the dataset's index directory tell every other process where that build stands:

- ``concepts-build.lock``: the builder holds an exclusive ``flock`` on it for as long as it
  runs. The kernel drops the lock when the process dies, however it dies, so "locked" means
  "a build is running" without trusting a pid that may have been reused. The process that
  starts a background build takes the lock first and hands the locked descriptor to the
  child, so there is no moment in which a build is starting but the lock is free.
- ``concepts-build.json``: what the builder last wrote: state, products done and total,
  the catalog fingerprint the build is for, the error if it failed. It is replaced
  atomically after every batch, so a reader never sees half a file.

A file that says "building" while nobody holds the lock is a build that was killed: it is
reported as ``stopped``, and the next build resumes it. This module imports nothing heavy,
because the chat reads it on every concept search until the index is ready.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from tools.search.backend import BackendUnavailable, IndexMissing

PROGRESS_FILE = "concepts-build.json"
LOCK_FILE = "concepts-build.lock"
LOG_FILE = "concepts-build.log"

BuildState = Literal["building", "ready", "failed"]
#: What a reader concludes: ``stopped`` is a "building" file nobody is working on any more;
#: ``starting`` is a held lock with no progress written yet.
Phase = Literal["starting", "building", "stopped", "failed", "ready"]


class IndexBuilding(BackendUnavailable):
    """The concept index is being built right now; the lexical index serves meanwhile."""


class BuildRunning(IndexBuilding):
    """A second build was asked for while one holds the lock."""


@dataclass(frozen=True, slots=True)
class BuildProgress:
    """The content of the progress file, as the builder writes it."""

    state: BuildState
    done: int
    total: int
    fingerprint: str
    pid: int
    started: str
    updated: str
    error: str | None = None

    def advanced(self, products: int) -> BuildProgress:
        return replace(self, done=min(self.total, self.done + products), updated=_now())

    def with_state(self, state: BuildState, error: str | None) -> BuildProgress:
        return replace(self, state=state, error=error, updated=_now())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildProgress:
        state = str(data.get("state"))
        if state not in ("building", "ready", "failed"):
            raise ValueError(f"unknown build state {state!r}")
        error = data.get("error")
        return cls(
            state=state,  # type: ignore[arg-type]
            done=int(data["done"]),
            total=int(data["total"]),
            fingerprint=str(data.get("fingerprint", "")),
            pid=int(data.get("pid", 0)),
            started=str(data.get("started", "")),
            updated=str(data.get("updated", "")),
            error=None if error is None else str(error),
        )


@dataclass(frozen=True, slots=True)
class BuildStatus:
    """What a reader knows: the phase, and the last progress the builder wrote (if any)."""

    phase: Phase
    progress: BuildProgress | None = None

    @property
    def ready(self) -> bool:
        return self.phase == "ready"

    @property
    def running(self) -> bool:
        return self.phase in ("starting", "building")

    @property
    def done(self) -> int:
        return self.progress.done if self.progress else 0

    @property
    def total(self) -> int:
        return self.progress.total if self.progress else 0

    @property
    def percent(self) -> int:
        """Whole percent done, never 100 before the build says ready."""
        if self.ready:
            return 100
        if not self.total:
            return 0
        return min(99, self.done * 100 // self.total)

    def describe(self) -> str:
        """One line for the chat's first screen: ``concept search: building, 34% (…)``."""
        if self.phase == "ready":
            return "concept search: ready"
        if self.phase == "starting" or (self.phase == "building" and not self.total):
            return "concept search: building, starting"
        counts = f"{self.done:,} of {self.total:,} products"
        if self.phase == "building":
            return f"concept search: building, {self.percent}% ({counts})"
        if self.phase == "stopped":
            return f"concept search: stopped at {self.percent}% ({counts})"
        reason = self.progress.error if self.progress and self.progress.error else "unknown error"
        return f"concept search: build failed ({reason})"


def progress_path(directory: Path) -> Path:
    return directory / PROGRESS_FILE


def lock_path(directory: Path) -> Path:
    return directory / LOCK_FILE


def read_progress(directory: Path) -> BuildProgress | None:
    """The last progress written, or None when no build ever started (or the file is bad)."""
    try:
        return BuildProgress.from_dict(json.loads(progress_path(directory).read_text("utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None  # a damaged file: treated as no build, so the next one starts over


def write_progress(directory: Path, progress: BuildProgress) -> None:
    """Replace the progress file atomically (readers poll it while the builder writes)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".concepts-build.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(progress.to_json())
        os.replace(tmp, progress_path(directory))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_progress(total: int, fingerprint: str, done: int = 0) -> BuildProgress:
    now = _now()
    return BuildProgress(
        state="building",
        done=done,
        total=total,
        fingerprint=fingerprint,
        pid=os.getpid(),
        started=now,
        updated=now,
    )


def lock_held(directory: Path) -> bool:
    """True while some process holds the build lock (a build is running).

    The probe opens the lock file read-only (``flock`` needs no write access), so a search
    in a read-only home does not fail on a write it never meant to make."""
    path = lock_path(directory)
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def read_status(directory: Path) -> BuildStatus | None:
    """Where the build stands; None when no build was ever started in ``directory``."""
    running = lock_held(directory)
    progress = read_progress(directory)
    if progress is None:
        return BuildStatus("starting") if running else None
    if running:
        return BuildStatus("building", progress)
    if progress.state == "building":
        return BuildStatus("stopped", progress)
    return BuildStatus(progress.state, progress)


def acquire_lock(directory: Path) -> int:
    """Take the build lock without waiting; the descriptor holds it until closed.

    Raises ``BuildRunning`` when another process holds it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(directory), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        status = read_status(directory) or BuildStatus("starting")
        raise BuildRunning(
            f"a concept index build is already running in {directory} "
            f"({status.describe().removeprefix('concept search: ')})"
        ) from None
    return fd


#: Build directories whose lock this process holds: the builder reads its own collection.
_held_here: set[Path] = set()


@contextmanager
def held_lock(directory: Path, inherited_fd: int | None = None) -> Iterator[None]:
    """Hold the build lock for the block: an inherited, already locked descriptor, or a new one."""
    fd = acquire_lock(directory) if inherited_fd is None else inherited_fd
    key = directory.resolve()
    _held_here.add(key)
    try:
        yield
    finally:
        _held_here.discard(key)
        os.close(fd)


def check_searchable(directory: Path, dataset: str) -> None:
    """Raise the one-line error a concept search gets while the index is not ready.

    A building index raises ``IndexBuilding`` (a ``BackendUnavailable``), so the chat's tool
    node falls back to the lexical index; a stopped or failed build raises ``IndexMissing``
    naming the command that resumes it. No build file at all is not this module's business.
    """
    if directory.resolve() in _held_here:
        return  # this process is the builder
    status = read_status(directory)
    if status is None or status.ready:
        return
    resume = f"`shopagent index --dataset {dataset} --concepts-only` resumes it"
    if status.phase == "starting" or (status.phase == "building" and not status.total):
        raise IndexBuilding("concept index still building (starting)")
    if status.phase == "building":
        raise IndexBuilding(
            f"concept index still building ({status.done:,} of {status.total:,} products)"
        )
    if status.phase == "stopped":
        raise IndexMissing(
            f"concept index build stopped at {status.done:,} of {status.total:,} products; {resume}"
        )
    raise IndexMissing(f"{status.describe().removeprefix('concept search: ')}; {resume}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
