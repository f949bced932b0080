"""Build a dataset's lexical and concept indexes: ``shopagent index`` as a library.

``build_indexes`` decides what a run does (skip indexes that exist, rebuild a lexical index
from an older shopagent, rebuild both when the catalog changed since, hand the concept index
to a detached builder) and does it. It tells its caller what happens through two callbacks, so
that it prints nothing itself: ``say(line)`` for each line the command shows, and
``progress_scope()``, a context manager yielding ``progress(label, done, total)`` for the
builds' progress, entered around the building only (a terminal opens its progress bar there,
so the lines said before and after stay above and below the bar).

A run that finds the dataset in the data folder (``SHOPAGENT_DATA_DIR``) records that folder in
the home (``tools.settings.config.remember_data_dir``): ``make chat`` sets the variable, a
shell opened later does not, and the commands run there must find the same catalog and its
judgments.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from tools.catalog.datasets import DatasetNotFound, catalog_identity, load_dataset
from tools.concept_build import (
    build_concepts,
    concepts_ready,
    forget_finished_build,
    start_background_build,
)
from tools.errors import BadInput
from tools.search.chroma_build_state import LOG_FILE, acquire_lock
from tools.settings.config import Settings, remember_data_dir
from tools.stores import (
    lexical_backend_name,
    lexical_outdated,
    open_concepts,
    open_lexical,
    read_manifest,
    stale_index_reason,
    write_manifest,
)

#: One line for the user.
Say = Callable[[str], None]
#: ``progress(label, done, total)``: ``label`` names the index ("tantivy", "chroma concepts");
#: its first call gives the total and what a stopped build had already stored.
IndexProgress = Callable[[str, int, int], None]
#: Entered around the building only; yields the ``IndexProgress`` to report to.
ProgressScope = Callable[[], AbstractContextManager[IndexProgress]]

CONCEPTS_LABEL = "chroma concepts"


@dataclass(frozen=True, slots=True)
class IndexRequest:
    """The flags of ``shopagent index`` (the lexical backend is a setting)."""

    dataset: str
    #: Also build the concept index.
    concepts: bool = True
    #: Do nothing when the indexes exist (and are current).
    if_missing: bool = False
    #: The concept index goes to a detached, resumable process.
    background: bool = False
    #: Only the concept index, resuming a stopped build.
    concepts_only: bool = False


@dataclass(frozen=True, slots=True)
class IndexTiming:
    """One index this run built: how many products it wrote, in how long."""

    label: str
    products: int
    seconds: float

    def describe(self) -> str:
        if not self.products:
            return f"{self.label}: every product already stored; nothing to embed"
        rate = self.products / max(self.seconds, 1e-9)
        return f"{self.label}: {self.products:,} products in {self.seconds:.1f} s ({rate:,.0f}/s)"


def _silent(line: str) -> None:
    pass


@contextmanager
def _no_progress() -> Iterator[IndexProgress]:
    yield lambda label, done, total: None


def build_indexes(
    settings: Settings,
    request: IndexRequest,
    *,
    say: Say = _silent,
    progress_scope: ProgressScope = _no_progress,
) -> list[IndexTiming]:
    """Build what ``request`` asks for; the timings of the indexes built in this process
    (empty when everything was skipped or handed to the background builder)."""
    dataset, concepts, background = request.dataset, request.concepts, request.background
    if_missing, concepts_only = request.if_missing, request.concepts_only
    _remember_data_dir(settings, dataset)
    built = read_manifest(settings, dataset)
    build_dir = settings.index_dir(dataset)
    keep_concepts = False
    outdated = if_missing and not concepts_only and lexical_outdated(settings, dataset)
    stale = if_missing and not concepts_only and stale_index_reason(settings, dataset)
    if stale:
        # A re-imported or edited catalog: both indexes may hold products it no longer has.
        say(f"{dataset}: the catalog changed since it was indexed; rebuilding")
        forget_finished_build(build_dir)
    elif outdated and built.get("products"):
        # Only the lexical index is out of date: rebuild it (seconds), keep a finished
        # concept index (minutes of embedding) as it is.
        say(f"{dataset}: the lexical index was built by an older shopagent; rebuilding it")
        keep_concepts = concepts and concepts_ready(settings, dataset, built)
        concepts = concepts and not keep_concepts
    elif if_missing and built.get("products") and not concepts_only:
        if not concepts or concepts_ready(settings, dataset, built):
            say(
                f"{dataset}: indexes exist ({built['products']:,} products, catalog "
                f"version {built.get('catalog_version')}); skipping"
            )
            return []
        if background:
            status = start_background_build(settings, dataset)
            say(f"{dataset}: lexical index exists; {status.describe()}")
            return []
    if background and concepts_only:
        say(f"{dataset}: {start_background_build(settings, dataset).describe()}")
        return []
    if concepts and not background:
        os.close(acquire_lock(build_dir))  # fail now, not after the lexical build
    source = load_dataset(dataset, settings)
    identity = catalog_identity(source)  # before reading: a change during the build shows later
    products = list(source.products())
    say(f"{dataset}: {source.report.summary()}")
    timings: list[IndexTiming] = []
    with progress_scope() as progress:
        if not concepts_only:
            label = lexical_backend_name(settings)
            written = 0
            progress(label, 0, len(products))

            def lexical_progress(n: int) -> None:
                nonlocal written
                written += n
                progress(label, written, len(products))

            started = time.perf_counter()
            open_lexical(settings, dataset, create=True).index(products, progress=lexical_progress)
            timings.append(IndexTiming(label, len(products), time.perf_counter() - started))
        if concepts and not background:
            # The first report says what a stopped build already stored, so speed and ETA
            # count only this run's work.
            embedded: list[int] = []

            def concept_progress(done: int, total: int) -> None:
                if not embedded:
                    embedded.append(total - done)
                progress(CONCEPTS_LABEL, done, total)

            started = time.perf_counter()
            build_concepts(
                open_concepts(settings, dataset),
                products,
                build_dir,
                fresh=not concepts_only,
                progress=concept_progress,
            )
            seconds = time.perf_counter() - started
            timings.append(IndexTiming(CONCEPTS_LABEL, embedded[0] if embedded else 0, seconds))
    for timing in timings:
        say(timing.describe())
    if not concepts_only:
        write_manifest(
            settings,
            dataset,
            products=len(products),
            rejected_rows=source.report.rejected,
            lexical_backend=lexical_backend_name(settings),
            concepts=concepts or keep_concepts,
            catalog_identity=identity,
        )
    if concepts and background:
        status = start_background_build(settings, dataset)
        say(f"{status.describe()} in the background (log: {build_dir / LOG_FILE})")
    return timings


def _remember_data_dir(settings: Settings, dataset: str) -> None:
    """Record the data folder when ``dataset`` is read from it (a stat of its files, no read)."""
    if settings.data_dir is None:
        return
    try:
        source = load_dataset(dataset, settings).source
    except (DatasetNotFound, BadInput):  # said by the build below, when it gets there
        return
    if source.resolve().is_relative_to(settings.data_dir.expanduser().resolve()):
        remember_data_dir(settings)
