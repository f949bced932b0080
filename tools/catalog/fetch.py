"""Download the public Chorus files with pinned sha256 checksums, into the cache, only once.

The files come from the querqy/chorus GitHub repository (Apache-2.0; product data from Icecat
under the Icecat Open Content License). A file already in the cache whose checksum matches is
not downloaded again; a download whose checksum does not match is deleted and reported, so a
corrupted or changed upstream file can never be imported by mistake.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tools.atomic_write import atomic_open
from tools.errors import BackendError
from tools.file_hash import file_sha256

CHORUS_BASE_URL = "https://raw.githubusercontent.com/querqy/chorus/main"
_CHUNK = 1 << 16

FetchProgress = Callable[[int], None]
"""Called as ``progress(bytes just received)`` while downloading (to advance a progress bar)."""


@dataclass(frozen=True, slots=True)
class RemoteFile:
    name: str
    path: str
    sha256: str


CHORUS_FILES = (
    RemoteFile(
        "1.json.zip",
        "data-encoder/ecommerce/vectors/data/1.json.zip",
        "15b622a11a6267aa0c450919a84b0fc41d7748db552f4c9c0e04167bbc7c38cb",
    ),
    RemoteFile(
        "2.json.zip",
        "data-encoder/ecommerce/vectors/data/2.json.zip",
        "17d95160289440d03ca50af65c1363d9edd1d5e82678ddb874b27aeac1f87c33",
    ),
    RemoteFile(
        "3.json.zip",
        "data-encoder/ecommerce/vectors/data/3.json.zip",
        "d4d088908fa648da7e79682872a77771ba42f065b253c4fb0f333e630d94f45a",
    ),
    RemoteFile(
        "4.json.zip",
        "data-encoder/ecommerce/vectors/data/4.json.zip",
        "533329e5173eac349ce61512fc86a352d5f6651e31694e03aa6e8428cbeaf3c0",
    ),
    RemoteFile(
        "Broad_Query_Set_rated.csv",
        "katas/Broad_Query_Set_rated.csv",
        "065b79c6c19b9ea8fa2dc2b0b8dae3f40c6389454a1f26aac3d3f8a7d43731b2",
    ),
)


class FetchError(BackendError):
    """A download failed (network closed, HTTP error); nothing partial is left in the cache."""


class ChecksumMismatch(FetchError):
    """A downloaded file is not the pinned one; it has been deleted."""


def chorus_cache_dir(cache_dir: Path) -> Path:
    """The folder ``load_dataset("chorus")`` looks in: ``<Settings.cache_dir>/datasets/chorus``."""
    return cache_dir / "datasets" / "chorus"


def fetch_chorus(
    folder: Path,
    progress: FetchProgress | None = None,
    *,
    base_url: str = CHORUS_BASE_URL,
    timeout: float = 60.0,
) -> Path:
    """Make sure the verified Chorus files are in ``folder``; returns it.

    Pass ``chorus_cache_dir(settings.cache_dir)`` for the place ``load_dataset`` looks in.
    Raises ``FetchError`` (network, HTTP) or ``ChecksumMismatch``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for remote in CHORUS_FILES:
        url = f"{base_url.rstrip('/')}/{remote.path}"
        fetch_file(url, folder / remote.name, remote.sha256, progress, timeout=timeout)
    return folder


def fetch_file(
    url: str,
    target: Path,
    sha256: str,
    progress: FetchProgress | None = None,
    *,
    timeout: float = 60.0,
) -> bool:
    """Download ``url`` to ``target`` unless a verified copy is there; True if it downloaded.

    The bytes go to a temporary file beside ``target`` and are hashed on the way; only a file
    with the expected checksum is moved into place (``os.replace``), so a crash or a bad
    download never leaves a half-written or wrong file under the final name.
    """
    if target.is_file():
        if file_sha256(target) == sha256:
            return False
        target.unlink()  # a stale or damaged copy: fetch it again
    with atomic_open(target, "wb") as handle:
        actual = _download(url, handle, progress, timeout)
        if actual != sha256:
            raise ChecksumMismatch(
                f"{target.name} from {url} has sha256 {actual}, expected {sha256}; "
                "the download was deleted (the upstream file changed or was corrupted)"
            )
    return True


def _download(
    url: str,
    handle: IO[bytes],
    progress: FetchProgress | None,
    timeout: float,
) -> str:
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(_CHUNK):
                handle.write(chunk)
                digest.update(chunk)
                if progress is not None:
                    progress(len(chunk))
    except urllib.error.HTTPError as error:
        raise FetchError(f"could not download {url}: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise FetchError(f"could not download {url}: {reason}") from error
    return digest.hexdigest()
