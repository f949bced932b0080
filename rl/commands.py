"""``shopagent collect`` and ``shopagent train``: rollouts scored on the live index, then a
LoRA trained on them.

Thin commands over ``rl.collect.run_collect`` and ``rl.train``; ``train`` gets a flag for every
field of the algorithm's run config (``rl.config_flags``). ``cli.py`` mounts both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.protocol.strategies import COLLECT_STRATEGIES, listed
from agent.terminal.command_options import DatasetOption, progress_task
from agent.terminal.render import console, progress_bar, styled
from rl.config_flags import with_run_config_flags
from tools.errors import BadInput
from tools.settings.config import load_settings


def collect(
    dataset: DatasetOption = "homedepot",
    split: Annotated[str, typer.Option(help="Split to draw training requests from.")] = "train",
    n_queries: Annotated[int | None, typer.Option(help="First N requests of the split.")] = None,
    samples: Annotated[int, typer.Option(min=1, help="Candidate tool calls per request.")] = 8,
    strategy: Annotated[
        str,
        typer.Option(help=f"{listed(COLLECT_STRATEGIES, summaries=True)}."),
    ] = "policy",
    reward: Annotated[
        str,
        typer.Option(help="gain (NDCG@10 over the raw search's) or absolute (format + NDCG@10)."),
    ] = "gain",
    candidates: Annotated[
        str,
        typer.Option(
            help="sample (the model writes --samples calls per request) or enumerate (expand "
            "only: every call of the expand action - copy, typo fix, each candidate word, "
            "pairs - built and scored without a model; --samples and --model are unused)."
        ),
    ] = "sample",
    model: Annotated[str | None, typer.Option(help="Stored model (the policy).")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    temperature: float = 0.8,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    out: Annotated[Path | None, typer.Option(help="Rollout log (default: under home).")] = None,
) -> None:
    """Sample K tool calls per request (or enumerate the expand action's calls), run them on
    the live index, score and log them.

    Resumable: samples already in the log are skipped, so an interrupted run continues.
    """
    from rl.collect import run_collect
    from rl.rollouts import CollectConfig

    config = CollectConfig(
        dataset=dataset,
        split=split,
        n_queries=n_queries,
        samples=samples,
        strategy=strategy,
        temperature=temperature,
        batch_size=batch_size,
        reward=reward,
        candidates=candidates,
    )
    with progress_bar() as bar:
        summary = run_collect(
            load_settings(),
            config,
            model=model,
            log_path=out,
            device=device,
            threads=threads,
            progress=progress_task(bar, f"collect {dataset}/{split}"),
        )
    console.print_json(json.dumps(summary.to_dict()))


@with_run_config_flags
def train(
    *,
    algo: Annotated[
        str | None,
        typer.Option(help="dpo, kto, rwr, grpo or sft (or algo = ... in --config)."),
    ] = None,
    from_trajectories: Annotated[
        Path | None,
        typer.Option(help="Rollout log written by `shopagent collect` (dpo, kto, rwr, grpo)."),
    ] = None,
    from_sessions: Annotated[
        Path | None,
        typer.Option(help="Training sessions (`shopagent data sessions --split train`; sft)."),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file of run settings (key = value; or a run's config.json). "
            "Flags override it.",
        ),
    ] = None,
    overrides: Mapping[str, Any],
) -> None:
    """Train a LoRA on the trajectories (TRL), merge it, and register the servable model.

    Every field of the algorithm's run config is an option below and a key of --config; the
    run folder's config.json keeps the resolved config.
    """
    import rl
    from rl.config_builder import build_config

    config = build_config(algo, path=config_file, flags=overrides)
    source = from_sessions if config.algo == "sft" else from_trajectories
    if source is None:
        wanted = "--from-sessions" if config.algo == "sft" else "--from-trajectories"
        raise BadInput(f"--algo {config.algo} trains from {wanted} FILE")
    other = from_trajectories if config.algo == "sft" else from_sessions
    if other is not None:
        raise BadInput(
            "--algo sft trains from --from-sessions, the others from --from-trajectories"
        )
    settings = load_settings()
    with console.status(f"training {config.algo} on {source}…"):
        run = rl.train(settings, config.algo, source, config)
    console.print(styled(f"run {run.name} at {run.run_dir}"))
    if run.model is not None:
        console.print(
            styled(f"registered model {run.model.name}: `shopagent serve --model {run.name}`")
        )
    console.print_json(json.dumps(run.metrics, default=str))
