"""Build a dataset's concept index resumably, in the foreground or in a detached process.

Embedding the Chorus catalog takes minutes on two cores, far longer than a shopper should
wait for the first prompt; the lexical index takes seconds. So ``make chat`` builds the
lexical index, starts this module as a detached process (``python -m tools.concept_build``)
and opens the chat at once: the concepts tool answers ``IndexBuilding`` and the chat falls
back to the lexical index until the build says ready, then the same tool joins.

The build is resumable. Products are written in Chroma upserts of ``WRITE_BATCH``; after
each one the progress file (``tools.search.chroma_build_state``) records how many are
stored. A build that finds a stopped build of the same catalog (same fingerprint) keeps the
collection and embeds only the products whose ids it does not hold yet, so a kill costs at
most one batch and never duplicates a product (ids are unique in a collection, and upsert
replaces). A different catalog, or ``fresh=True``, starts from an empty collection.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tools.catalog.product import Product
from tools.errors import one_line
from tools.search.chroma_build_state import (
    LOG_FILE,
    BuildProgress,
    BuildRunning,
    BuildStatus,
    acquire_lock,
    held_lock,
    new_progress,
    read_progress,
    read_status,
    write_progress,
)
from tools.search.chroma_concepts import ConceptIndex
from tools.search.chroma_records import EMBEDDING_TEXT_VERSION
from tools.settings.config import Settings, load_settings

#: Niceness of a background build: the chat the shopper is typing into comes first.
BACKGROUND_NICENESS = 10

#: Called with (products stored so far, products in the catalog) after every batch.
BuildProgressCallback = Callable[[int, int], None]


def catalog_fingerprint(products: Sequence[Product]) -> str:
    """What the build is for: every product as stored, and how its text is embedded.

    Two builds resume each other only when this matches, so a changed catalog (or a new
    embedded-text recipe) never mixes old and new vectors in one collection.
    """
    digest = hashlib.sha256(f"text-v{EMBEDDING_TEXT_VERSION}\n".encode())
    for product in products:
        digest.update(json.dumps(product.to_dict(), sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def build_concepts(
    index: ConceptIndex,
    products: Sequence[Product],
    directory: Path,
    *,
    fresh: bool = False,
    progress: BuildProgressCallback | None = None,
    lock_fd: int | None = None,
) -> BuildProgress:
    """Bring ``index`` to hold exactly ``products``, resuming a stopped build of them.

    Holds the build lock throughout (``lock_fd``: one already taken by the process that
    started this one); raises ``BuildRunning`` if another build holds it. Returns the final
    progress, state ``ready``. Any failure is recorded in the progress file, then re-raised.
    """
    unique = list({product.id: product for product in products}.values())  # last one wins
    fingerprint = catalog_fingerprint(unique)
    total = len(unique)
    with held_lock(directory, lock_fd):
        prior = read_progress(directory)
        if prior is not None and prior.fingerprint == fingerprint and not fresh:
            stored = index.stored_ids()
            todo = [product for product in unique if product.id not in stored]
            if prior.state == "ready" and not todo:  # built, and nobody deleted it since
                if progress is not None:
                    progress(total, total)
                return prior
        else:
            index.reset()
            todo = unique
        state = new_progress(total, fingerprint, done=total - len(todo))
        write_progress(directory, state)
        if progress is not None:
            progress(state.done, total)

        def advance(products_stored: int) -> None:
            nonlocal state
            state = state.advanced(products_stored)
            write_progress(directory, state)
            if progress is not None:
                progress(state.done, total)

        try:
            index.upsert(todo, progress=advance)
            missing = total - len({p.id for p in unique} & index.stored_ids())
            if missing:
                raise RuntimeError(f"{missing:,} of {total:,} products missing after the build")
        except BaseException as error:
            # Ctrl-C leaves a stopped build (resumable); anything else is a failure to show.
            if not isinstance(error, KeyboardInterrupt):
                write_progress(directory, state.with_state("failed", one_line(error, limit=None)))
            raise
        state = state.with_state("ready", None)
        write_progress(directory, state)
        return state


def start_background_build(settings: Settings, dataset: str) -> BuildStatus:
    """Start ``python -m tools.concept_build`` detached, unless a build runs or is done.

    The lock is taken here and its descriptor handed to the child, so the build counts as
    running from this moment on; the child logs to ``concepts-build.log`` in the index dir.
    """
    directory = settings.index_dir(dataset)
    status = read_status(directory)
    if status is not None and (status.running or status.ready):
        return status
    try:
        fd = acquire_lock(directory)
    except BuildRunning:  # another process started one a moment ago
        return read_status(directory) or BuildStatus("starting")
    try:
        if read_progress(directory) is None:
            write_progress(directory, new_progress(total=0, fingerprint=""))
        log = (directory / LOG_FILE).open("ab")
        with log:
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tools.concept_build",
                    "--dataset",
                    dataset,
                    "--lock-fd",
                    str(fd),
                    "--nice",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(fd,),
                start_new_session=True,  # Ctrl-C in the chat does not stop it
                env={**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"},
            )
    finally:
        os.close(fd)  # the child holds the lock now
    return read_status(directory) or BuildStatus("starting")


def forget_finished_build(directory: Path) -> None:
    """Mark the concept index of ``directory`` as not built, so the next build (foreground or
    ``start_background_build``) embeds the catalog again instead of keeping a finished index
    of a catalog that has since been replaced. Raises ``BuildRunning`` while a build runs."""
    if read_progress(directory) is None:
        return
    with held_lock(directory):
        write_progress(directory, new_progress(total=0, fingerprint=""))


def resume_stopped_build(settings: Settings, dataset: str) -> BuildStatus | None:
    """Restart a build that was killed or failed; None when no build was ever started."""
    directory = settings.index_dir(dataset)
    status = read_status(directory)
    if status is None or status.running or status.ready:
        return status
    return start_background_build(settings, dataset)


def concept_search_notice(settings: Settings, dataset: str) -> str | None:
    """The chat's first-screen line about concept search; None when it was never built."""
    status = read_status(settings.index_dir(dataset))
    if status is None:
        return None
    if status.running:
        return f"{status.describe()}; keyword search answers until it is ready"
    return status.describe()


def concepts_ready(settings: Settings, dataset: str, manifest: dict[str, object]) -> bool:
    """Whether the concept index is complete; indexes from before progress files trust the
    manifest, which then only said ``concepts: true`` after a finished foreground build."""
    status = read_status(settings.index_dir(dataset))
    if status is not None:
        return status.ready
    return manifest.get("concepts") is True


def main(argv: Sequence[str] | None = None) -> int:
    """The detached builder: load the dataset, build, record the outcome, exit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--lock-fd", type=int, default=None, help="An inherited, held lock.")
    parser.add_argument("--nice", action="store_true", help="Lower this process's priority.")
    args = parser.parse_args(argv)
    if args.nice:
        os.nice(BACKGROUND_NICENESS)
    settings = load_settings()
    directory = settings.index_dir(args.dataset)
    try:
        from tools.catalog.datasets import load_dataset
        from tools.stores import open_concepts

        products = list(load_dataset(args.dataset, settings).products())
        index = open_concepts(settings, args.dataset)
        final = build_concepts(
            index, products, directory, lock_fd=args.lock_fd, progress=_log_start()
        )
    except BuildRunning as error:
        print(f"not started: {error}", file=sys.stderr, flush=True)
        return 0
    except Exception as error:
        # The builder's own failure (dataset, disk, Chroma) reaches the chat as "failed".
        current = read_progress(directory) or new_progress(total=0, fingerprint="")
        message = one_line(error, limit=None)
        if current.state != "failed":
            write_progress(directory, current.with_state("failed", message))
        print(f"concept index build failed: {message}", file=sys.stderr, flush=True)
        return 1
    print(f"concept index ready: {final.total:,} products", flush=True)
    return 0


def _log_start() -> BuildProgressCallback:
    """A progress callback that logs the first report: how much a resumed build skips."""
    logged = False

    def log(done: int, total: int) -> None:
        nonlocal logged
        if not logged:
            logged = True
            print(f"concept index: {done:,} of {total:,} products stored, building", flush=True)

    return log


if __name__ == "__main__":
    sys.exit(main())
