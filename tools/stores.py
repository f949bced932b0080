"""Open the configured search backends for a dataset: the one place settings become backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.atomic_write import write_text
from tools.errors import BadInput
from tools.search.backend import ProductIndex
from tools.settings.config import Settings

if TYPE_CHECKING:
    from tools.search.chroma_concepts import ConceptIndex

LEXICAL_BACKENDS = ("auto", "tantivy", "elasticsearch")


def lexical_backend_name(settings: Settings) -> str:
    """``auto`` means Elasticsearch when a URL is configured, else the embedded tantivy."""
    name = settings.lexical_backend
    if name not in LEXICAL_BACKENDS:
        raise BadInput(f"unknown lexical backend {name!r}; choose one of {LEXICAL_BACKENDS}")
    if name == "auto":
        return "elasticsearch" if settings.es_url else "tantivy"
    return name


def open_lexical(settings: Settings, dataset: str, *, create: bool = False) -> ProductIndex:
    if lexical_backend_name(settings) == "elasticsearch":
        from tools.search.elasticsearch_backend import ElasticsearchIndex

        if not settings.es_url:
            raise BadInput("the elasticsearch backend needs SHOPAGENT_ES_URL")
        return ElasticsearchIndex.from_settings(settings, dataset)
    from tools.search.tantivy_backend import TantivyIndex

    return TantivyIndex(settings.tantivy_dir(dataset), create=create, dataset=dataset)


def lexical_outdated(settings: Settings, dataset: str) -> bool:
    """Whether the embedded lexical index of ``dataset`` exists but was built by an older
    shopagent (another schema), so it must be rebuilt before it can be searched.

    Only tantivy is checked: its schema lives on disk next to the products. Elasticsearch
    checks its own mapping on use.
    """
    if lexical_backend_name(settings) != "tantivy":
        return False
    from tools.search.backend import IndexMissing, IndexOutdated

    try:
        open_lexical(settings, dataset)
    except IndexOutdated:
        return True
    except IndexMissing:
        return False
    return False


def open_concepts(settings: Settings, dataset: str) -> ConceptIndex:
    """Chroma opens lazily: a missing collection is reported (IndexMissing) on first use."""
    from tools.search.chroma_concepts import ConceptIndex

    return ConceptIndex.from_settings(settings, dataset)


def write_manifest(settings: Settings, dataset: str, **facts: Any) -> dict[str, Any]:
    """Record what was indexed and when: trajectories cite this as the catalog version."""
    manifest = {**read_manifest(settings, dataset), **facts, "dataset": dataset}
    manifest["catalog_version"] = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    write_text(manifest_path(settings, dataset), json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def read_manifest(settings: Settings, dataset: str) -> dict[str, Any]:
    path = manifest_path(settings, dataset)
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def manifest_path(settings: Settings, dataset: str) -> Path:
    return settings.index_dir(dataset) / "manifest.json"
