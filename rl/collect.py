"""``shopagent collect``: one entry point over the two ways of getting scored tool calls.

``candidates="sample"`` has the policy write ``samples`` calls per request
(``rl.rollouts.collect_rollouts``); ``candidates="enumerate"`` builds every call of the expand
action without a model (``rl.enumerated.collect_enumerated_rollouts``). Both score the calls
on the live index and append them to the same rollout log, resumably.
"""

from __future__ import annotations

import re
from pathlib import Path

from rl.rollouts import CollectConfig, CollectProgress, CollectSummary, collect_rollouts
from tools.errors import BadInput
from tools.settings.checks import flag_value, number
from tools.settings.config import Settings

#: ``--device``: the CPU, or a CUDA device (``cuda``, ``cuda:1``).
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")
#: ``--threads``: torch refuses 0 and negative counts (``set_num_threads expects a positive
#: integer``) only once the model is loading.
MAX_THREADS = 1024


def run_collect(
    settings: Settings,
    config: CollectConfig,
    *,
    model: str | None = None,
    log_path: Path | None = None,
    device: str = "cpu",
    threads: int | None = None,
    progress: CollectProgress | None = None,
) -> CollectSummary:
    """Collect by ``config.candidates``; ``model``, ``device`` and ``threads`` are for
    sampling only (an enumerated run loads no model)."""
    check_device_flags(device, threads, sampling=config.candidates != "enumerate")
    if config.candidates == "enumerate":
        from rl.enumerated import collect_enumerated_rollouts

        return collect_enumerated_rollouts(settings, config, log_path=log_path, progress=progress)
    return collect_rollouts(
        settings,
        config,
        model=model,
        log_path=log_path,
        device=device,
        threads=threads,
        progress=progress,
    )


def check_device_flags(device: str, threads: int | None, *, sampling: bool = True) -> None:
    """``--device`` and ``--threads`` checked before any data or model is read: one line each,
    where they used to end a run as ``AssertionError: Torch not compiled with CUDA enabled``
    or a torch ``RuntimeError`` once the model was loading. ``sampling``: a model will run on
    ``device`` (then a CUDA device must exist)."""
    if threads is not None:
        flag_value("--threads", number(1, MAX_THREADS, integer=True), threads)
    if not _DEVICE.fullmatch(device or ""):
        raise BadInput(f"--device must be cpu or cuda (or cuda:N), got {device!r}")
    if sampling and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            cuda_build = torch.version.cuda is not None
            build = "no CUDA device is visible" if cuda_build else "this torch has no CUDA support"
            raise BadInput(f"no CUDA device for --device {device} ({build}): use --device cpu")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise BadInput(
                f"no CUDA device {index}: {torch.cuda.device_count()} visible; use --device cuda:0"
            )
