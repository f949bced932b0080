"""The concept index built in the background: progress file, lock, resume after a kill,
the chat's fallback while it builds and its concepts tool joining once it is ready.

Small catalogs only (the eight hand-written products, or 40 of their variants) with writes of
eight, so a build has several batches to be killed between.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pytest

from agent.conversation.state import AgentLimits
from agent.conversation.tool_node import AgentTools
from tests.catalog_samples import sample_products
from tests.local_models import seed_embedding_exports
from tools.catalog.datasets import import_dataset
from tools.catalog.product import Product
from tools.concept_build import (
    build_concepts,
    catalog_fingerprint,
    concept_search_notice,
    concepts_ready,
    resume_stopped_build,
    start_background_build,
)
from tools.search.backend import Progress
from tools.search.chroma_build_state import (
    BuildRunning,
    IndexBuilding,
    acquire_lock,
    check_searchable,
    new_progress,
    progress_path,
    read_status,
    write_progress,
)
from tools.search.chroma_concepts import ConceptIndex
from tools.search.chroma_records import record_metadata
from tools.search.tantivy_backend import TantivyIndex
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings, load_settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BATCH = 8


def variants(count: int) -> list[Product]:
    """``count`` distinct products cycled from the hand-written catalog."""
    base = sample_products()
    return [
        replace(base[i % len(base)], id=f"p{i:03d}", title=f"{base[i % len(base)].title} #{i}")
        for i in range(count)
    ]


def spy_on_writes(index: ConceptIndex) -> list[str]:
    """The ids the index is asked to embed and store from now on, in order."""
    written: list[str] = []
    upsert = index.upsert

    def spy(products: Iterable[Product], progress: Progress | None = None) -> int:
        batch = list(products)
        written.extend(product.id for product in batch)
        return upsert(batch, progress=progress)

    index.upsert = spy  # type: ignore[method-assign]
    return written


# -- the progress file and the lock -------------------------------------------------------------


def test_status_reads_each_phase_from_the_files(tmp_path: Path) -> None:
    assert read_status(tmp_path) is None  # no build ever started here

    fd = acquire_lock(tmp_path)
    assert read_status(tmp_path).phase == "starting"  # type: ignore[union-attr]
    write_progress(tmp_path, new_progress(total=19406, fingerprint="f", done=6600))
    status = read_status(tmp_path)
    assert status is not None and status.phase == "building" and status.running
    assert (status.done, status.total, status.percent) == (6600, 19406, 34)
    assert status.describe() == "concept search: building, 34% (6,600 of 19,406 products)"
    with pytest.raises(BuildRunning, match="already running"):
        acquire_lock(tmp_path)
    with pytest.raises(IndexBuilding, match=r"still building \(6,600 of 19,406 products\)"):
        check_searchable(tmp_path, "chorus")
    os.close(fd)  # what the kernel does when the builder dies

    stopped = read_status(tmp_path)
    assert stopped is not None and stopped.phase == "stopped" and not stopped.running
    with pytest.raises(Exception, match="--concepts-only` resumes it") as raised:
        check_searchable(tmp_path, "chorus")
    assert not isinstance(raised.value, IndexBuilding)  # no build is coming: say how to resume

    progress = json.loads(progress_path(tmp_path).read_text())
    write_progress(tmp_path, new_progress(10, "f", done=10).with_state("ready", None))
    ready = read_status(tmp_path)
    assert ready is not None and ready.ready and ready.percent == 100
    assert ready.describe() == "concept search: ready"
    check_searchable(tmp_path, "chorus")  # nothing raised
    assert progress["pid"] == os.getpid()

    progress_path(tmp_path).write_text("{not json")
    assert read_status(tmp_path) is None  # a damaged file means: start over


def test_a_failed_build_says_why(tmp_path: Path) -> None:
    write_progress(tmp_path, new_progress(40, "f", done=8).with_state("failed", "disk full"))
    status = read_status(tmp_path)
    assert status is not None and status.phase == "failed"
    assert status.describe() == "concept search: build failed (disk full)"
    with pytest.raises(Exception, match=r"build failed \(disk full\); `shopagent index"):
        check_searchable(tmp_path, "chorus")


def test_the_fingerprint_follows_the_catalog() -> None:
    products = variants(5)
    assert catalog_fingerprint(products) == catalog_fingerprint(list(products))
    changed = [*products[:4], replace(products[4], description="new text")]
    assert catalog_fingerprint(changed) != catalog_fingerprint(products)


# -- resuming -----------------------------------------------------------------------------------


KILLED_BUILD = """
import os, signal, sys
from pathlib import Path
from tests.test_concept_build import BATCH, variants
from tools.concept_build import build_concepts
from tools.search.chroma_concepts import ConceptIndex

directory = Path(sys.argv[1])
index = ConceptIndex("kill", path=directory / "chroma", build_dir=directory, write_batch=BATCH)

def progress(done, total):
    if done >= 2 * BATCH:  # two writes stored: die as a kill -9 would, no cleanup at all
        os.kill(os.getpid(), signal.SIGKILL)

build_concepts(index, variants(40), directory, progress=progress)
"""


def test_a_killed_build_resumes_where_it_stopped_without_duplicates(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED_BUILD), str(tmp_path)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    stopped = read_status(tmp_path)
    assert stopped is not None and stopped.phase == "stopped"
    assert (stopped.done, stopped.total) == (2 * BATCH, 40)

    index = ConceptIndex("kill", path=tmp_path / "chroma", build_dir=tmp_path, write_batch=BATCH)
    before = index.stored_ids()
    assert len(before) == 2 * BATCH  # the two writes the kill did not undo
    written = spy_on_writes(index)
    seen: list[tuple[int, int]] = []
    final = build_concepts(index, variants(40), tmp_path, progress=lambda d, t: seen.append((d, t)))

    assert final.state == "ready" and final.done == 40
    assert seen[0] == (2 * BATCH, 40)  # picked up where the kill left it
    assert seen[-1] == (40, 40)
    expected = {product.id for product in variants(40)}
    assert sorted(written) == sorted(expected - before)  # only the missing ones, each once
    assert index.count() == 40 and index.stored_ids() == expected  # no duplicates
    assert read_status(tmp_path).ready  # type: ignore[union-attr]
    hit = index.search_dense("Razer DeathAdder esports mouse", size=1).hits[0].product
    assert hit.brand == "Razer"


def test_a_finished_build_of_the_same_catalog_is_not_redone(tmp_path: Path) -> None:
    products = variants(12)
    index = ConceptIndex("same", path=tmp_path / "chroma", build_dir=tmp_path, write_batch=BATCH)
    build_concepts(index, products, tmp_path)
    upsert = index.upsert
    index.upsert = None  # type: ignore[assignment,method-assign]  # a second write would fail
    assert build_concepts(index, products, tmp_path).state == "ready"

    # Products lost since (deleted by hand) are embedded again, and only those.
    index.delete(["p001", "p007"])
    index.upsert = upsert  # type: ignore[method-assign]
    written = spy_on_writes(index)
    build_concepts(index, products, tmp_path)
    assert sorted(written) == ["p001", "p007"] and index.count() == 12


def test_a_changed_catalog_starts_over(tmp_path: Path) -> None:
    index = ConceptIndex("change", path=tmp_path / "chroma", build_dir=tmp_path, write_batch=BATCH)
    build_concepts(index, variants(12), tmp_path)
    smaller = variants(5)
    build_concepts(index, smaller, tmp_path)
    assert index.stored_ids() == {product.id for product in smaller}
    assert index.get("p004") is not None and index.get("p011") is None
    stored = index.get("p000")
    assert stored is not None and record_metadata(stored) == record_metadata(smaller[0])


# -- the chat: fallback while building, then the concepts tool joins ----------------------------


def settings_for(home: Path) -> Settings:
    return load_settings({"home": home})


def test_concepts_fall_back_to_lexical_while_building_and_join_when_ready(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path / "home")
    products = sample_products()
    TantivyIndex(settings.tantivy_dir("shop"), create=True, dataset="shop").index(products)
    build_dir = settings.index_dir("shop")
    tools = AgentTools(SearchToolbox(settings, "shop"), AgentLimits())

    fd = acquire_lock(build_dir)  # a background build is running…
    write_progress(build_dir, new_progress(total=8, fingerprint="f", done=3))
    _, artifact = tools.search_concepts(concepts=["gaming mouse"])
    first, second = artifact["attempts"]
    assert not first["ok"] and first["tool"] == "search_concepts"
    assert "concept index still building (3 of 8 products)" in first["error"]
    assert second["ok"] and second["tool"] == "search_products"
    found = [product["id"] for product in artifact["products"]]
    assert found and found[0] in {"m1", "m2"}
    os.close(fd)

    # …until the build finishes: the very same tools object now reads the concept index.
    index = ConceptIndex.from_settings(settings, "shop")
    build_concepts(index, products, build_dir)
    _, artifact = tools.search_concepts(concepts=["gaming mouse"])
    assert [a["tool"] for a in artifact["attempts"]] == ["search_concepts"]
    assert artifact["attempts"][0]["ok"] and artifact["products"][0]["id"] in {"m1", "m2"}


def test_a_background_build_runs_detached_and_the_chat_reads_it_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedding_exports: Path
) -> None:
    home = tmp_path / "home"
    seed_embedding_exports(embedding_exports, home)  # the encoder's export: not made again
    monkeypatch.setenv("SHOPAGENT_HOME", str(home))  # the child reads its settings from the env
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(
        "".join(json.dumps(p.to_dict()) + "\n" for p in variants(24)), encoding="utf-8"
    )
    settings = settings_for(home)
    import_dataset(catalog, "jsonl", "bg", settings)
    assert concept_search_notice(settings, "bg") is None  # never asked for
    assert not concepts_ready(settings, "bg", {})

    status = start_background_build(settings, "bg")
    assert status.running  # counts as running before the child has even started
    assert start_background_build(settings, "bg").running  # a second start is a no-op
    notice = concept_search_notice(settings, "bg")
    assert notice is not None and notice.endswith("keyword search answers until it is ready")
    deadline = time.monotonic() + 240
    while (current := read_status(settings.index_dir("bg"))).running:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the background build did not finish"
        time.sleep(0.5)
    log = (settings.index_dir("bg") / "concepts-build.log").read_text()
    assert current is not None and current.ready, log
    assert "concept index ready: 24 products" in log
    assert concept_search_notice(settings, "bg") == "concept search: ready"
    assert concepts_ready(settings, "bg", {})
    assert resume_stopped_build(settings, "bg").ready  # type: ignore[union-attr]
    reopened = ConceptIndex.from_settings(settings, "bg")
    assert reopened.count() == 24
    assert reopened.search_dense("Razer esports mouse", size=1).hits[0].product.brand == "Razer"


# -- the command line: what `make chat` runs -----------------------------------------------------


def shopagent(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHOPAGENT_HOME": str(home), "COLUMNS": "200"}
    env.pop("SHOPAGENT_ES_URL", None)
    env.pop("SHOPAGENT_CHROMA_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_index_in_the_background_then_skip_once_ready(
    tmp_path: Path, embedding_exports: Path
) -> None:
    home = tmp_path / "home"
    seed_embedding_exports(embedding_exports, home)  # the encoder's export: not made again
    catalog = PROJECT_ROOT / "tests" / "fixtures" / "generic" / "catalog.jsonl"
    imported = shopagent(home, "data", "import", str(catalog), "-f", "jsonl", "--name", "mini")
    assert imported.returncode == 0, imported.stderr
    settings = settings_for(home)

    started = shopagent(home, "index", "--dataset", "mini", "--if-missing", "--background")
    assert started.returncode == 0, started.stderr
    assert "tantivy:" in started.stdout and "in the background" in started.stdout
    deadline = time.monotonic() + 240
    while (status := read_status(settings.index_dir("mini"))) is not None and status.running:
        if time.monotonic() > deadline:
            pytest.fail("the background build did not finish")
        time.sleep(0.5)
    assert status is not None and status.ready

    again = shopagent(home, "index", "--dataset", "mini", "--if-missing", "--background")
    assert again.returncode == 0, again.stderr
    assert "indexes exist" in again.stdout and "skipping" in again.stdout
    found = shopagent(home, "search", "wireless mouse", "--dataset", "mini", "--tool", "concepts")
    assert found.returncode == 0, found.stderr
    assert "Wireless Mouse M185" in found.stdout

    held = acquire_lock(settings.index_dir("mini"))  # a build in progress elsewhere
    try:
        refused = shopagent(home, "index", "--dataset", "mini")
    finally:
        os.close(held)
    assert refused.returncode == 1
    assert "already running" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
