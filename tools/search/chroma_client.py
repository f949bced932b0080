"""Chroma clients: embedded on disk by default, a server when a URL is configured.

Connection failures come back as :class:`BackendUnavailable` with one readable line that
names the server, instead of httpx tracebacks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import chromadb
import httpx
from chromadb.api import ClientAPI
from chromadb.config import Settings as ChromaSettings

from tools.errors import BadInput
from tools.search.backend import BackendUnavailable

DEFAULT_PORT = 8000
_CONNECT_FAILURE = "Could not connect to"


@dataclass(frozen=True, slots=True)
class ChromaServer:
    host: str
    port: int
    ssl: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"


def parse_chroma_url(url: str) -> ChromaServer:
    """``http://host:port`` (or https) into its parts; anything else is a one-line error."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise BadInput(f"bad Chroma URL {url!r}; expected http://host:port")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise BadInput(f"bad Chroma URL {url!r}; expected http://host:port with no path")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as error:
        raise BadInput(f"bad Chroma URL {url!r}: {error}") from error
    return ChromaServer(host=parts.hostname, port=port, ssl=parts.scheme == "https")


def _chroma_settings() -> ChromaSettings:
    # Telemetry would try to reach the network on every client start.
    return ChromaSettings(anonymized_telemetry=False)


def persistent_client(path: Path) -> ClientAPI:
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=_chroma_settings())


def http_client(server: ChromaServer) -> ClientAPI:
    with server_errors(server.url):
        return chromadb.HttpClient(
            host=server.host, port=server.port, ssl=server.ssl, settings=_chroma_settings()
        )


@contextmanager
def server_errors(url: str) -> Iterator[None]:
    """Turn "cannot reach the server" failures into one line that names it."""
    try:
        yield
    except httpx.TransportError as error:
        reason = str(error) or type(error).__name__
        raise BackendUnavailable(f"the Chroma server at {url} is unreachable ({reason})") from error
    except ValueError as error:
        # chromadb reports a refused connection at client start as a ValueError.
        if _CONNECT_FAILURE not in str(error):
            raise
        raise BackendUnavailable(f"the Chroma server at {url} is unreachable") from error
