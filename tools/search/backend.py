"""The contract every search backend keeps, and the errors a shopper may see."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from tools.catalog.product import Product
from tools.errors import BackendError, NotFound
from tools.search.request import SearchRequest
from tools.search.results import SearchResults

Progress = Callable[[int], None]


class SearchError(BackendError):
    """A search failure with a message fit to show the shopper as one line."""


class BackendUnavailable(SearchError):
    """The backend cannot be reached (server down, timeout)."""


class IndexMissing(SearchError, NotFound):
    """No index exists yet; the message names the command that builds one."""


class IndexOutdated(IndexMissing):
    """An index exists but an older shopagent built it (another schema); it must be rebuilt."""


@runtime_checkable
class SearchBackend(Protocol):
    """Read side: what the agent's tools call."""

    name: str

    def search(self, request: SearchRequest) -> SearchResults: ...

    def get(self, product_id: str) -> Product | None: ...

    def count(self) -> int: ...


@runtime_checkable
class ProductIndex(SearchBackend, Protocol):
    """Write side: full builds and in-place catalog drift (upsert, delete) without a rebuild."""

    def index(self, products: Iterable[Product], progress: Progress | None = None) -> int: ...

    def upsert(self, products: Iterable[Product]) -> int: ...

    def delete(self, product_ids: Iterable[str]) -> int: ...
