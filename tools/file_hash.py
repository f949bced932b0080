"""The sha256 of a file, read in 1 MiB chunks: the one fingerprint of downloads, trajectory
logs, training data, model weights and shipped adapters (what model cards and checks cite)."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex sha256 of the file's bytes; memory stays flat for multi-GB weights."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
