"""The embedded index's schema and analyzer, kept apart so the backend and benchmarks share them."""

from __future__ import annotations

import orjson
import tantivy

from tools.catalog.product import Product, normalise_attribute_key
from tools.search.measures import MEASURES_FIELD, measures_text
from tools.search.request import SEARCH_FIELDS, attribute_token

#: Registered under this name on every open: English stemming, ASCII folding, stopwords —
#: the same analysis chain the Elasticsearch backend's ``english`` analyzer applies.
ANALYZER = "shop_en"
#: Request field -> index field. ``attributes`` searches the flattened ``key value`` text.
TEXT_FIELDS: dict[str, str] = {name: name for name in SEARCH_FIELDS}
MAX_TOKEN_CHARS = 40
#: Fields whose word positions are indexed, for phrase matches (``tools.search.title_match``).
POSITION_FIELDS = frozenset({"title"})
#: tantivy's built-in whitespace tokenizer, as Elasticsearch's ``whitespace`` analyzer: the
#: measure tokens are made in Python (``tools.search.measures``) and indexed as written.
MEASURES_TOKENIZER = "whitespace"


def _surface_chain() -> tantivy.TextAnalyzerBuilder:
    """The first steps of the index's chain, shared so both analyzers split words alike."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(MAX_TOKEN_CHARS))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
    )


def build_analyzer() -> tantivy.TextAnalyzer:
    return (
        _surface_chain()
        .filter(tantivy.Filter.stopword("english"))
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def surface_analyzer() -> tantivy.TextAnalyzer:
    """The index chain up to (not including) stopwords and stemming: the words as written."""
    return _surface_chain().build()


def build_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    for field in TEXT_FIELDS.values():
        option = "position" if field in POSITION_FIELDS else "freq"
        builder.add_text_field(field, tokenizer_name=ANALYZER, index_option=option)
    # A new field changes the stored schema, so an index built before it reads as outdated.
    builder.add_text_field(MEASURES_FIELD, tokenizer_name=MEASURES_TOKENIZER, index_option="freq")
    # Exact-match filter fields hold pre-normalised (lower-case) tokens.
    builder.add_text_field("brand_kw", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("category_kw", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("attr_kv", tokenizer_name="raw", index_option="basic")
    builder.add_float_field("price", indexed=True, fast=True)
    builder.add_text_field("doc", stored=True, tokenizer_name="raw", index_option="basic")
    return builder.build()


def to_document(product: Product) -> tantivy.Document:
    """One indexed document; ``doc`` stores the product exactly so hits rebuild it losslessly."""
    document = tantivy.Document()
    document.add_text("id", product.id)
    document.add_text("title", product.title)
    if product.brand:
        document.add_text("brand", product.brand)
        document.add_text("brand_kw", product.brand.lower())
    if product.category_path:
        document.add_text("category", product.category)
        for level in product.category_path:
            document.add_text("category_kw", level.lower())
    if product.description:
        document.add_text("description", product.description)
    attributes_text = product.searchable_attributes()
    if attributes_text:
        document.add_text("attributes", attributes_text)
    measures = measures_text(product.title, attributes_text)
    if measures:
        document.add_text(MEASURES_FIELD, measures)
    for key, value in product.attributes.items():
        document.add_text("attr_kv", attribute_kv(key, value))
    if product.price is not None:
        document.add_float("price", float(product.price))
    document.add_text("doc", orjson.dumps(product.to_dict()).decode())
    return document


def attribute_kv(key: str, value: object) -> str:
    """The single token an attribute-equality filter matches: ``max_dpi=16000``."""
    return f"{normalise_attribute_key(key)}={attribute_token(value)}"
