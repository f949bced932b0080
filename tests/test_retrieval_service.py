"""``SearchToolbox`` as the agent's one retrieval service: lookups, facets and writer hints.

Why: the agent reaches the catalog only through these methods (no reaching into the toolbox's
indexes), so each must answer exactly what reading the index itself would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.conversation.deps import AgentLimits
from agent.conversation.tool_node import AgentTools
from tests.catalog_samples import sample_products
from tools.catalog.product import Product
from tools.search.backend import BackendUnavailable
from tools.search.expand_hints import FEEDBACK, expand_hints
from tools.search.facets import read_facets
from tools.search.request import SearchRequest
from tools.search.results import SearchResults
from tools.search.tantivy_backend import TantivyIndex
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings


class ConceptCopy:
    """A concept index that only stores products (enough for ``get``)."""

    def __init__(self, products: Sequence[Product]) -> None:
        self.products = {p.id: p for p in products}
        self.reads: list[str] = []

    def get(self, product_id: str) -> Product | None:
        self.reads.append(product_id)
        return self.products.get(product_id)


class DownLexical:
    name = "down"

    def search(self, request: SearchRequest) -> SearchResults:
        raise BackendUnavailable("elasticsearch is not reachable")

    def get(self, product_id: str) -> Product | None:
        raise BackendUnavailable("elasticsearch is not reachable")


def service(tmp_path: Path, lexical: object, concepts: object) -> SearchToolbox:
    box = SearchToolbox(Settings(home=tmp_path / "home"), "samples")
    box.__dict__.update(lexical=lexical, concepts=concepts)  # the cached properties' slots
    return box


@pytest.fixture()
def lexical() -> TantivyIndex:
    index = TantivyIndex(None, create=True)
    index.index(sample_products())
    return index


def test_get_many_returns_what_the_catalog_has_by_id(tmp_path: Path, lexical: TantivyIndex) -> None:
    box = service(tmp_path, lexical, None)
    found = box.get_many(["m2", "nope", "m1", "m2"])
    assert list(found) == ["m2", "m1"]
    assert found["m1"] == lexical.get("m1")
    with pytest.raises(BackendUnavailable):
        service(tmp_path, DownLexical(), None).get_many(["m1"])


def test_facets_and_hints_are_the_indexes_own(tmp_path: Path, lexical: TantivyIndex) -> None:
    box = service(tmp_path, lexical, None)
    assert box.facets() == read_facets(lexical)
    assert box.has_term_statistics()
    hints = box.expand_hints("logitek mouse")
    assert hints == expand_hints(lexical, "logitek mouse") and hints.source == FEEDBACK
    no_statistics = service(tmp_path, DownLexical(), None)
    assert not no_statistics.has_term_statistics()
    with pytest.raises(ValueError, match="tantivy"):
        no_statistics.expand_hints("mouse")


def test_get_product_reads_the_concept_index_only_when_the_lexical_one_fails(
    tmp_path: Path, lexical: TantivyIndex
) -> None:
    concepts = ConceptCopy(sample_products())
    tools = AgentTools(service(tmp_path, lexical, concepts), AgentLimits())
    _, artifact = tools.get_product(product_id="m1")
    assert [a["tool"] for a in artifact["attempts"]] == ["get_product"] and not concepts.reads
    tools = AgentTools(service(tmp_path, DownLexical(), concepts), AgentLimits())
    _, artifact = tools.get_product(product_id="m1")
    assert [(a["tool"], a["ok"]) for a in artifact["attempts"]] == [
        ("get_product", False),
        ("concepts.get", True),
    ]
    assert [p["id"] for p in artifact["products"]] == ["m1"] and concepts.reads == ["m1"]
