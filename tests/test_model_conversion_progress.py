"""`shopagent model init` shows the GGUF conversion on one line of its own.

transformers draws a tqdm bar for the dequantize loop (and others for loading and writing);
under the CLI's status line each redraw used to become a separate line. The conversion now
reports through a callback and transformers prints no bar at all.

The conversion watched is the session's one (``local_models`` in ``tests/conftest.py``:
``init_default_model`` with a progress callback, stdout and stderr captured at the file
descriptors as ``capfd`` does), which every test of the real local model then serves.
"""

from __future__ import annotations

import pytest

from agent.runtime.model_store import DEFAULT_LOCAL_MODEL
from tests.local_models import LocalModels


@pytest.mark.slow
def test_the_conversion_reports_through_the_callback_and_prints_no_bars(
    local_models: LocalModels,
) -> None:
    calls = list(local_models.progress_calls)
    printed = local_models.printed
    for bar in ("de-quantizing", "Loading weights", "Writing model shards", "it/s]"):
        assert bar not in printed
    total = calls[-1][1]
    assert total > 100 and calls[-1] == (total, total)  # every tensor of the GGUF
    assert [done for done, _ in calls] == list(range(1, total + 1))
    assert local_models.bars_on_after  # switched back on for everyone else
    assert (local_models.models_dir / DEFAULT_LOCAL_MODEL / "model.safetensors").is_file()


def test_the_capture_sees_what_a_bar_prints() -> None:
    """The check above can fail: a bar drawn to stderr, printed, or written straight to a
    file descriptor (as a C library would) is in what it reads."""
    import os
    import sys

    from tqdm import tqdm

    from tests.local_models import printed_meanwhile

    with printed_meanwhile() as printed:
        for _ in tqdm(range(3), desc="de-quantizing", file=sys.stderr):
            pass
        print("Writing model shards")
        os.write(2, b"Loading weights\n")
    assert "de-quantizing" in printed[0] and "it/s]" in printed[0]
    assert "Writing model shards" in printed[0] and "Loading weights" in printed[0]
