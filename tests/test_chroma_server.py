"""The concept index against a real ``chroma run`` server, and what a dead server looks like."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.catalog_samples import sample_products
from tools.search.backend import BackendUnavailable, IndexMissing
from tools.search.chroma_concepts import ConceptIndex
from tools.search.request import SearchFilters

CHROMA_CLI = Path(sys.executable).with_name("chroma")
START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture()
def chroma_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A fresh server on a free port; yields its URL and process, killed afterwards."""
    if not CHROMA_CLI.exists():
        pytest.fail(f"the chroma CLI is missing at {CHROMA_CLI} (chromadb is a dependency)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "chroma.log").open("wb")
    command = [str(CHROMA_CLI), "run", "--path", str(tmp_path / "db")]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"chroma run exited with {server.returncode}: see {log.name}")
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"chroma run did not answer its heartbeat within {START_TIMEOUT_S}s")
            time.sleep(0.2)
        yield url, server
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        log.close()


@pytest.mark.slow
def test_index_search_delete_on_a_server_then_it_dies(
    chroma_server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, server = chroma_server
    index = ConceptIndex("samples", url=url)
    with pytest.raises(IndexMissing, match="shopagent index --dataset samples"):
        index.count()

    assert index.index(sample_products()) == len(sample_products())

    found = index.search_dense("noise cancelling headphones", size=3)
    assert found.ids[0] == "h1"
    mice = index.search_concepts(["gaming", "mouse"], SearchFilters(category="mice"), 5)
    assert set(mice.ids) == {"m1", "m2", "m3"}

    assert index.delete(["h1"]) == 1
    assert "h1" not in index.search_dense("noise cancelling headphones", size=10).ids
    # another client (a new process would do the same) sees the server's state
    assert ConceptIndex("samples", url=url).count() == len(sample_products()) - 1

    server.kill()
    server.wait(timeout=10)
    with pytest.raises(BackendUnavailable) as raised:
        index.search_dense("mouse")
    message = str(raised.value)
    assert url in message
    assert "\n" not in message


def test_a_server_that_is_not_running_is_unavailable_in_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(BackendUnavailable) as raised:
        ConceptIndex("chorus", url=url).search_concepts(["mouse"])
    assert str(raised.value).startswith(f"the Chroma server at {url} is unreachable")
    assert "\n" not in str(raised.value)
