"""`shopagent model init` shows the GGUF conversion on one line of its own.

transformers draws a tqdm bar for the dequantize loop (and others for loading and writing);
under the CLI's status line each redraw used to become a separate line. The conversion now
reports through a callback and transformers prints no bar at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers.utils import logging as hf_logging

from agent.runtime.model_store import init_default_model
from tools.settings.config import Settings


@pytest.mark.slow
def test_the_conversion_reports_through_the_callback_and_prints_no_bars(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[int, int]] = []
    stored = init_default_model(
        Settings(home=tmp_path), progress=lambda done, total: calls.append((done, total))
    )

    printed = capfd.readouterr()
    for bar in ("de-quantizing", "Loading weights", "Writing model shards", "it/s]"):
        assert bar not in printed.err and bar not in printed.out
    total = calls[-1][1]
    assert total > 100 and calls[-1] == (total, total)  # every tensor of the GGUF
    assert [done for done, _ in calls] == list(range(1, total + 1))
    assert hf_logging.is_progress_bar_enabled()  # switched back on for everyone else
    assert (stored.path / "model.safetensors").is_file()
