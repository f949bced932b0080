"""The offline MiniLM embedding function and its registration with Chroma."""

from __future__ import annotations

import numpy as np
import pytest
from chromadb.utils.embedding_functions import (
    config_to_embedding_function,
    known_embedding_functions,
)

from tools.errors import NotFound
from tools.search.embeddings import (
    BUNDLED_MODEL,
    DIMENSIONS,
    EMBEDDING_FUNCTION_NAME,
    MiniLMEmbeddingFunction,
    load_sentence_model,
)


def test_vectors_are_unit_length_and_similar_texts_are_close() -> None:
    function = MiniLMEmbeddingFunction(batch_size=2)
    mouse, rodent_free, toner = function(
        ["wireless computer mouse", "cordless mouse for a laptop", "black laser toner cartridge"]
    )
    assert len(mouse) == DIMENSIONS
    for vector in (mouse, rodent_free, toner):
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert float(np.dot(mouse, rodent_free)) > float(np.dot(mouse, toner)) + 0.2
    query = function.embed_query(["wireless computer mouse"])[0]
    assert np.allclose(query, mouse, atol=1e-5)


def test_the_model_is_loaded_once_per_process() -> None:
    assert load_sentence_model() is load_sentence_model(BUNDLED_MODEL, "cpu")


def test_registered_under_a_stable_name_and_rebuilt_from_its_config() -> None:
    assert known_embedding_functions[EMBEDDING_FUNCTION_NAME] is MiniLMEmbeddingFunction
    original = MiniLMEmbeddingFunction(batch_size=16)
    assert original.get_config() == {"model": BUNDLED_MODEL, "device": "cpu", "batch_size": 16}
    rebuilt = config_to_embedding_function(
        {"name": EMBEDDING_FUNCTION_NAME, "config": original.get_config()}
    )
    assert isinstance(rebuilt, MiniLMEmbeddingFunction)
    assert rebuilt.get_config() == original.get_config()
    assert not original.is_legacy()
    assert original.default_space() == "cosine"


def test_config_mistakes_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown config keys"):
        MiniLMEmbeddingFunction.build_from_config({"model_name": "x"})
    with pytest.raises(ValueError, match="bad batch_size"):
        MiniLMEmbeddingFunction.build_from_config({"batch_size": 0})
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        MiniLMEmbeddingFunction(batch_size=0)
    function = MiniLMEmbeddingFunction()
    function.validate_config_update(function.get_config(), {"device": "cuda", "batch_size": 8})
    with pytest.raises(ValueError, match="cannot switch the model"):
        function.validate_config_update(function.get_config(), {"model": "/elsewhere"})


def test_a_model_path_without_a_model_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound, match="no sentence-transformers model at"):
        MiniLMEmbeddingFunction(model=str(tmp_path))(["anything"])
