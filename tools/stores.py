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
#: ``catalog_version``: the build time, which trajectories cite.
_VERSION_FORMAT = "%Y%m%dT%H%M%S.%fZ"


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
    manifest["catalog_version"] = datetime.now(UTC).strftime(_VERSION_FORMAT)
    write_text(manifest_path(settings, dataset), json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def stale_index_reason(settings: Settings, dataset: str) -> str | None:
    """Why the indexes of ``dataset`` may no longer match its catalog, or None.

    A re-import under the same name (or a catalog file edited in place) leaves indexes that
    still return products the catalog no longer has; the chat would show them and let the
    shopper buy one. The manifest records the catalog's identity at build time
    (``catalog_identity``); manifests from before that are judged by time: a catalog file
    written after the build. No index, or no dataset to compare with, is not "stale".
    """
    from tools.catalog.datasets import (
        DatasetNotFound,
        catalog_identity,
        catalog_modified,
        load_dataset,
    )

    built = read_manifest(settings, dataset)
    if not built.get("products"):
        return None
    try:
        source = load_dataset(dataset, settings)
    except DatasetNotFound:
        return None
    recorded = built.get("catalog_identity")
    if recorded is not None:
        changed = recorded != catalog_identity(source)
    else:
        modified, indexed = catalog_modified(source), _built_at(built)
        changed = modified is not None and indexed is not None and modified > indexed
    if not changed:
        return None
    return (
        f"the {dataset} catalog changed after its indexes were built; search may show products "
        f"it no longer has: rebuild with `shopagent index --dataset {dataset}`"
    )


def _built_at(manifest: dict[str, Any]) -> datetime | None:
    """The build time a manifest's ``catalog_version`` stamp records."""
    try:
        return datetime.strptime(str(manifest.get("catalog_version")), _VERSION_FORMAT).replace(
            tzinfo=UTC
        )
    except ValueError:
        return None


def read_manifest(settings: Settings, dataset: str) -> dict[str, Any]:
    path = manifest_path(settings, dataset)
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def manifest_path(settings: Settings, dataset: str) -> Path:
    return settings.index_dir(dataset) / "manifest.json"
