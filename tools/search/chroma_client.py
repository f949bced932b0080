"""Chroma clients: embedded on disk by default, a server when a URL is configured.

Connection failures come back as :class:`BackendUnavailable` with one readable line that
names the server, instead of httpx tracebacks. chromadb's HTTP client waits forever
(``httpx.Client(timeout=None)``) and reads any JSON as its own, so before it is built the
server must answer Chroma's heartbeat within ``CHROMA_TIMEOUT_S`` (a hung server once held a
search 900 s; a server that was not Chroma failed with ``UserIdentity.__init__() got an
unexpected keyword argument 'hello'``), and its requests then time out too.
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
from chromadb.errors import ChromaError

from tools.errors import BadInput, one_line
from tools.search.backend import BackendUnavailable
from tools.settings.config import CHROMA_TIMEOUT_ENV, CHROMA_TIMEOUT_S
from tools.settings.config import chroma_timeout as settings_chroma_timeout

DEFAULT_PORT = 8000
#: Seconds any one request to a Chroma server may take (queries take milliseconds, 30 by
#: default); ``SHOPAGENT_CHROMA_TIMEOUT`` overrides it (``tools.settings.config``).
TIMEOUT_ENV = CHROMA_TIMEOUT_ENV
HEARTBEAT_PATH = "/api/v2/heartbeat"
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
    try:
        return chromadb.PersistentClient(path=str(path), settings=_chroma_settings())
    except ChromaError as error:
        # Chroma writes to its SQLite database as it opens, even for a search: in a read-only
        # home that was ``unexpected InternalError: … attempt to write a readonly database``.
        if "readonly database" not in str(error) and "unable to open" not in str(error):
            raise
        raise BackendUnavailable(
            f"cannot open the concept index at {path} ({one_line(error, 120)}): Chroma writes "
            "to its database even to search; make the folder writable, or point "
            "SHOPAGENT_HOME at a writable copy"
        ) from error


def chroma_timeout() -> float:
    """``SHOPAGENT_CHROMA_TIMEOUT`` seconds if set, else the default; checked with every other
    setting (``tools.settings.config.chroma_timeout``: above 0, at most a day)."""
    return settings_chroma_timeout()


def http_client(server: ChromaServer, timeout_s: float | None = None) -> ClientAPI:
    """A client for a server that answered Chroma's heartbeat, its requests bounded in time."""
    timeout_s = chroma_timeout() if timeout_s is None else timeout_s
    check_chroma_server(server, timeout_s)
    with server_errors(server.url, timeout_s):
        try:
            client = chromadb.HttpClient(
                host=server.host, port=server.port, ssl=server.ssl, settings=_chroma_settings()
            )
        except (TypeError, KeyError) as error:  # chromadb read a foreign reply as its own
            raise BackendUnavailable(
                f"the server at {server.url} is not a Chroma server ({error})"
            ) from error
    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(timeout_s)
    return client


def check_chroma_server(server: ChromaServer, timeout_s: float = CHROMA_TIMEOUT_S) -> None:
    """The server answers ``GET /api/v2/heartbeat`` as Chroma does, within ``timeout_s``."""
    with server_errors(server.url, timeout_s):
        response = httpx.get(f"{server.url}{HEARTBEAT_PATH}", timeout=timeout_s)
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200 and isinstance(body, dict) and "nanosecond heartbeat" in body:
        return
    seen = " ".join(response.text.split())[:80]
    raise BackendUnavailable(
        f"the server at {server.url} is not a Chroma server (GET {HEARTBEAT_PATH} answered "
        f"HTTP {response.status_code}: {seen!r}); check SHOPAGENT_CHROMA_URL"
    )


@contextmanager
def server_errors(url: str, timeout_s: float = CHROMA_TIMEOUT_S) -> Iterator[None]:
    """Turn "cannot reach the server" failures into one line that names it."""
    try:
        yield
    except httpx.TimeoutException as error:
        raise BackendUnavailable(
            f"the Chroma server at {url} did not answer within {timeout_s:.0f} s (hung?)"
        ) from error
    except httpx.TransportError as error:
        reason = str(error) or type(error).__name__
        raise BackendUnavailable(f"the Chroma server at {url} is unreachable ({reason})") from error
    except ValueError as error:
        # chromadb reports a refused connection at client start as a ValueError.
        if _CONNECT_FAILURE not in str(error):
            raise
        raise BackendUnavailable(f"the Chroma server at {url} is unreachable") from error
