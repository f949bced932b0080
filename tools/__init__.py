"""Retrieval half of shopagent: the catalog, the search backends and the concept index."""
