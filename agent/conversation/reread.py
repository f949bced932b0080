"""The catalog at answer time: what was shown, re-read, so a reply never quotes a stale price.

Why: a list may sit on the shopper's screen for minutes while the catalog changes. A
reference ("the second one", "compare 1 and 3") and grounding both read the catalog again,
under a short timeout; when it is down, what was shown is still the best there is.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.conversation.deps import AgentToolbox
from agent.conversation.products import ShownProduct
from agent.conversation.tool_node import call_with_timeout
from tools.catalog.product import Product

#: Seconds a catalog re-read may take at answer time before the tool's copy is used.
CATALOG_REREAD_TIMEOUT_S = 5.0


class CatalogReader:
    """Reads products from the catalog by id, each read under ``CATALOG_REREAD_TIMEOUT_S``."""

    def __init__(self, toolbox: AgentToolbox) -> None:
        self.toolbox = toolbox

    def lookup(self, product_id: str) -> Product | None:
        """The product as the catalog has it now; raises ``SearchError`` when it cannot say."""
        return call_with_timeout(lambda: self.toolbox.get(product_id), CATALOG_REREAD_TIMEOUT_S)

    def current(self, shown: Sequence[ShownProduct]) -> list[Product | None]:
        """Shown products as the catalog has them now, in order (``None`` for one that is
        gone), read in one request (``get_many``)."""
        ids = [item.id for item in shown]
        try:
            found = call_with_timeout(lambda: self.toolbox.get_many(ids), CATALOG_REREAD_TIMEOUT_S)
        except Exception:  # the catalog is down: what was shown is still the best we have
            return [item.as_product() for item in shown]
        return [found.get(product_id) for product_id in ids]

    def reread(self, shown: Sequence[ShownProduct]) -> list[ShownProduct]:
        """The last list again, same positions, with the catalog's current titles and prices."""
        return [
            ShownProduct.from_product(item.position, product)
            for item, product in zip(shown, self.current(shown), strict=True)
            if product is not None
        ]
