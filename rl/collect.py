"""``shopagent collect``: one entry point over the two ways of getting scored tool calls.

``candidates="sample"`` has the policy write ``samples`` calls per request
(``rl.rollouts.collect_rollouts``); ``candidates="enumerate"`` builds every call of the expand
action without a model (``rl.enumerated.collect_enumerated_rollouts``). Both score the calls
on the live index and append them to the same rollout log, resumably.
"""

from __future__ import annotations

from pathlib import Path

from rl.rollouts import CollectConfig, CollectProgress, CollectSummary, collect_rollouts
from tools.settings.config import Settings


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
