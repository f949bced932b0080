"""Shared fixtures: the real datasets in ../shared/data and an isolated SHOPAGENT_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from tests.local_models import LocalModels, export_embeddings, store_local_models
from tools.settings.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SHOPAGENT_DATA_DIR") or PROJECT_ROOT.parent / "shared" / "data")
FIXTURES = Path(__file__).resolve().parent / "fixtures"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

# Property tests: the same examples on every run by default, so a result is reproducible (a
# random draw once failed a clean-clone run on a case no one had changed).
# ``HYPOTHESIS_PROFILE=explore`` draws new, more examples to hunt for such cases; each case
# found becomes a test of its own.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "chorus-electronics").is_dir():
        pytest.fail(f"the benchmark data is missing at {SHARED_DATA} (see shared/data/README.md)")
    return SHARED_DATA


@pytest.fixture()
def shopagent_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("SHOPAGENT_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def chorus_settings(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """The whole Chorus catalog in a real tantivy index, in a home of its own (10-20 s on a
    busy machine, so built once per session). Read-only: a test that writes into a home
    makes its own (``dataclasses.replace(chorus_settings, home=tmp_path / ...)``)."""
    from tools.catalog.datasets import load_dataset
    from tools.stores import open_lexical

    settings = Settings(home=tmp_path_factory.mktemp("home"), data_dir=shared_data)
    open_lexical(settings, "chorus", create=True).index(load_dataset("chorus", settings).products())
    return settings


@pytest.fixture(scope="session")
def local_models(tmp_path_factory: pytest.TempPathFactory) -> LocalModels:
    """``shopagent model init`` once per session (about a minute of CPU); each module of the
    real local model copies it into a home of its own (``LocalModels.install``)."""
    return store_local_models(tmp_path_factory.mktemp("local-models"))


@pytest.fixture(scope="session")
def embedding_exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real ONNX export of the bundled MiniLM encoder (~12 s of CPU), under the label the
    product's own loads use: checked in ``tests/test_onnx_embeddings.py``, and copied into the
    fresh homes whose subprocesses embed (``tests.local_models.seed_embedding_exports``), which
    would each export it again."""
    return export_embeddings(tmp_path_factory.mktemp("onnx-cache"))
