"""Issue 15, item 6: bytes that are not UTF-8, in a search query (argv) and on chat stdin.

They become U+FFFD where they come in, so every search tool runs, the model gets a request it
can encode, and the turn is logged.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.trajectory.log import TrajectoryLog, default_log_path
from tests.hostile_helpers import FIXTURES, http_server, import_catalog, openai_handler, shopagent
from tests.local_models import seed_embedding_exports
from tools.text import REPLACEMENT, valid_text


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, embedding_exports: Path) -> Path:
    home = tmp_path_factory.mktemp("hostile-utf8")
    seed_embedding_exports(embedding_exports, home)  # the encoder's export: not made again
    catalog = FIXTURES / "generic" / "catalog.jsonl"
    assert import_catalog(home, catalog, "jsonl", "mini").returncode == 0
    built = shopagent(home, "index", "--dataset", "mini", timeout=600)  # lexical and Chroma
    assert built.returncode == 0, built.stderr.decode()
    return home


@pytest.mark.parametrize("tool", ["lexical", "concepts", "dense", "direct"])
def test_invalid_utf8_in_a_query_runs_every_tool(home: Path, tool: str) -> None:
    result = shopagent(home, "search", b"\xff mouse \xc3", "--dataset", "mini", "--tool", tool)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert "Traceback" not in stderr and "TypeError" not in stderr
    assert f"{tool} ·" in result.stdout.decode()


def test_invalid_utf8_on_chat_stdin_is_a_logged_turn(home: Path) -> None:
    with http_server(openai_handler("Here you go.")) as url:
        result = shopagent(
            home,
            "chat",
            "--dataset",
            "mini",
            stdin=b"\xff\xfe wireless mouse\n/quit\n",
            env={"SHOPAGENT_LLM_BASE_URL": url, "SHOPAGENT_LLM_MODEL": "fake", "TERM": "dumb"},
        )
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "surrogates not allowed" not in out
    assert f"you> {REPLACEMENT}{REPLACEMENT} wireless mouse" in out
    episodes = TrajectoryLog(default_log_path(home)).latest()
    assert episodes, "the turn was not logged"
    assert episodes[-1]["user_text"] == f"{REPLACEMENT}{REPLACEMENT} wireless mouse"


def test_valid_text_replaces_only_undecodable_bytes() -> None:
    assert valid_text("caf\udcc3\udca9 ok") == f"caf{REPLACEMENT}{REPLACEMENT} ok"
    assert valid_text("café [/] \x1b") == "café [/] \x1b"


def test_a_lone_surrogate_from_any_path_reaches_no_encoder() -> None:
    """A model's JSON can hold ``"\\udcff"`` too: the request and the embedder clean it."""
    from tests.catalog_samples import sample_products
    from tools.search.embeddings import MiniLMEmbeddingFunction
    from tools.search.request import SearchRequest
    from tools.search.tantivy_backend import TantivyIndex

    request = SearchRequest("\udcff mouse")
    assert request.text == f"{REPLACEMENT} mouse"
    index = TantivyIndex(None, create=True)
    index.index(sample_products())
    assert index.search(request).hits
    assert MiniLMEmbeddingFunction().encode(["\udcff mouse"]).shape == (1, 384)
