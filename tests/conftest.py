"""Shared fixtures: the real datasets in ../shared/data and an isolated SHOPAGENT_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

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


@pytest.fixture(scope="module")
def chorus_settings(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """The whole Chorus catalog in a real tantivy index, in a home of its own (a few seconds)."""
    from tools.catalog.datasets import load_dataset
    from tools.stores import open_lexical

    settings = Settings(home=tmp_path_factory.mktemp("home"), data_dir=shared_data)
    open_lexical(settings, "chorus", create=True).index(load_dataset("chorus", settings).products())
    return settings
