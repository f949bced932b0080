"""Chorus download against a local HTTP server: checksums, caching, corrupted and missing files."""

from __future__ import annotations

import functools
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tools.catalog import ChecksumMismatch, FetchError, fetch_chorus
from tools.catalog.fetch import CHORUS_FILES, chorus_cache_dir, file_sha256


class _Server:
    def __init__(self, root: Path) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                server.requests.append(self.path)

        handler = functools.partial(Handler, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture()
def mirror(tmp_path: Path, shared_data: Path) -> Path:
    """A temporary copy of the upstream layout (repository paths) of the Chorus files."""
    root = tmp_path / "mirror"
    for remote in CHORUS_FILES:
        target = root / remote.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / "chorus-electronics" / remote.name, target)
    return root


@pytest.fixture()
def server(mirror: Path) -> Iterator[_Server]:
    running = _Server(mirror)
    yield running
    running.close()


def test_fetch_verifies_and_caches(tmp_path: Path, server: _Server) -> None:
    target = chorus_cache_dir(tmp_path / "cache")
    received: list[int] = []

    folder = fetch_chorus(target, received.append, base_url=server.url)

    assert folder == target == tmp_path / "cache" / "datasets" / "chorus"
    for remote in CHORUS_FILES:
        assert file_sha256(folder / remote.name) == remote.sha256
    assert sum(received) == sum((folder / r.name).stat().st_size for r in CHORUS_FILES)
    assert len(server.requests) == len(CHORUS_FILES)
    assert sorted(p.name for p in folder.iterdir()) == sorted(r.name for r in CHORUS_FILES)

    fetch_chorus(target, received.append, base_url=server.url)
    assert len(server.requests) == len(CHORUS_FILES)  # nothing downloaded twice


def test_damaged_cached_file_is_downloaded_again(tmp_path: Path, server: _Server) -> None:
    folder = fetch_chorus(tmp_path / "chorus", base_url=server.url)
    (folder / "2.json.zip").write_bytes(b"truncated")

    fetch_chorus(folder, base_url=server.url)

    assert server.requests[-1].endswith("/2.json.zip")
    assert len(server.requests) == len(CHORUS_FILES) + 1
    assert file_sha256(folder / "2.json.zip") == CHORUS_FILES[1].sha256


def test_corrupted_download_is_deleted(tmp_path: Path, mirror: Path, server: _Server) -> None:
    served = mirror / CHORUS_FILES[2].path
    served.write_bytes(served.read_bytes()[:-10] + b"corrupted!")
    folder = tmp_path / "chorus"

    with pytest.raises(ChecksumMismatch, match=r"3\.json\.zip .* expected d4d08890"):
        fetch_chorus(folder, base_url=server.url)

    assert sorted(p.name for p in folder.iterdir()) == ["1.json.zip", "2.json.zip"]


def test_missing_file_is_a_clear_error(tmp_path: Path, mirror: Path, server: _Server) -> None:
    (mirror / CHORUS_FILES[-1].path).unlink()
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_chorus(tmp_path / "chorus", base_url=server.url)
    assert not any(p.name.endswith(".part") for p in (tmp_path / "chorus").iterdir())


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(FetchError, match="could not download"):
        fetch_chorus(tmp_path / "chorus", base_url=f"http://127.0.0.1:{port}", timeout=5)
