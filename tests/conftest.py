"""Shared fixtures: the real datasets in ../shared/data and an isolated SHOPAGENT_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SHOPAGENT_DATA_DIR") or PROJECT_ROOT.parent / "shared" / "data")
FIXTURES = Path(__file__).resolve().parent / "fixtures"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


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
