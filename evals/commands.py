"""``shopagent eval``: run a strategy over a split, compare two runs, measure catalog drift,
choose the chat's search for a dataset.

The commands parse flags into one ``EvalOptions`` and hand it to ``evals.suite`` /
``evals.drift`` (``choose-search``: ``evals.choose_search``); the tables come from
``evals.report``, ``evals.compare``, ``evals.drift`` and ``evals.choose_search``.
``cli.py`` mounts ``eval_app`` as ``shopagent eval``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent.protocol.strategies import STRATEGY_NAMES, listed
from agent.terminal.command_options import (
    DatasetOption,
    JsonOption,
    RunsOption,
    labelled_progress,
    print_json,
    progress_for,
    progress_task,
)
from agent.terminal.render import console, errors, progress_bar, styled
from tools.settings.config import load_settings

eval_app = typer.Typer(
    help="Evaluate strategies, compare runs, measure catalog drift.", no_args_is_help=True
)


@eval_app.command("run")
def eval_run(
    dataset: DatasetOption = "chorus",
    split: Annotated[str, typer.Option(help="all, dev, test (or train).")] = "all",
    strategy: Annotated[
        str,
        typer.Option(help=f"{listed(STRATEGY_NAMES)}."),
    ] = "raw",
    model: Annotated[str | None, typer.Option(help="Stored model for LLM strategies.")] = None,
    limit: Annotated[
        int | None, typer.Option(help="Only the first N queries (or sessions) of the split.")
    ] = None,
    sessions: Annotated[
        Path | None,
        typer.Option(
            help="Score conversations instead of queries: a sessions file (JSONL; `shopagent "
            "data sessions`), each run turn by turn through the chat. Strategies: last, all, "
            "graph, policy, oracle."
        ),
    ] = None,
    runs: RunsOption = Path("runs"),
    json_output: JsonOption = False,
) -> None:
    """Run every query of a split; write a TREC run, report.json, report.md and print a table."""
    from evals.report import reports_table
    from evals.suite import EvalOptions, run_eval

    options = EvalOptions(dataset, split, strategy, model=model, limit=limit, runs_root=runs)
    settings = load_settings({"llm": {"model": model}})
    with progress_for(json_output) as bar:
        if sessions is not None:
            from evals.session_suite import run_session_eval

            outcome = run_session_eval(
                settings,
                options,
                sessions,
                progress=progress_task(bar, f"{strategy} on {dataset}/{split} sessions"),
            )
        else:
            outcome = run_eval(
                settings,
                options,
                progress=progress_task(bar, f"{strategy} on {dataset}/{split}"),
            )
    if json_output:  # the report as report.json holds it; where it went is said on stderr
        print_json(outcome.report.to_dict())
        errors.print(styled(f"run and reports in {outcome.run_dir}"))
        return
    console.print(reports_table([outcome.report]))
    report = outcome.report
    console.print(styled(f"{report.wall_s:.1f} s, {report.throughput()}"))
    console.print(styled(f"run and reports in {outcome.run_dir}"))


@eval_app.command("compare")
def eval_compare(
    a: Annotated[str, typer.Argument(help="Run folder or report.json (baseline).")],
    b: Annotated[str, typer.Argument(help="Run folder or report.json (candidate).")],
    runs: RunsOption = Path("runs"),
) -> None:
    """Per-metric deltas with paired significance tests and win/tie/loss counts."""
    from evals.compare import compare_runs, comparison_table

    comparison, out = compare_runs(a, b, runs_root=runs)
    console.print(comparison_table(comparison))
    console.print(styled(f"comparison and scatter plot in {out}"))


@eval_app.command("drift")
def eval_drift(
    dataset: DatasetOption = "chorus",
    split: Annotated[str, typer.Option()] = "all",
    strategy: Annotated[str, typer.Option()] = "raw",
    share: Annotated[float, typer.Option(help="Share of products replaced.")] = 0.2,
    seed: int = 0,
    model: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int | None, typer.Option()] = None,
    runs: RunsOption = Path("runs"),
) -> None:
    """Replace a seeded share of the catalog in place (on a copy) and re-run, no retraining."""
    from evals.drift import drift_table, run_drift
    from evals.suite import EvalOptions

    options = EvalOptions(dataset, split, strategy, model=model, limit=limit, runs_root=runs)
    with progress_bar() as bar:
        outcome = run_drift(
            load_settings({"llm": {"model": model}}),
            options,
            share=share,
            seed=seed,
            progress=progress_task(bar, f"drift {strategy}"),
        )
    console.print(drift_table(outcome.report))
    console.print(styled(f"drift report in {outcome.out_dir}"))


@eval_app.command("choose-search")
def eval_choose_search(
    dataset: DatasetOption = "chorus",
    split: Annotated[
        str,
        typer.Option(
            help="The split the choice is measured on (Chorus's dev is the hash half of its "
            "judged queries)."
        ),
    ] = "dev",
    runs: RunsOption = Path("runs"),
    json_output: JsonOption = False,
) -> None:
    """Choose the chat's search for a dataset: keywords alone or fused with concepts.

    Runs `copy` and `fused` on the split, compares them paired (NDCG@10, 95% bootstrap CI),
    fuses only when the interval lies above 0, and writes the choice beside the dataset's
    indexes, where the chat reads it.
    """
    from evals.choose_search import choice_table, choose_search

    command = f"shopagent eval choose-search --dataset {dataset} --split {split}"
    if runs != Path("runs"):
        command += f" --runs {runs}"
    settings = load_settings()
    if json_output:
        outcome = choose_search(settings, dataset, command=command, split=split, runs_root=runs)
        print_json({**outcome.choice.to_dict(), "path": str(outcome.path)})
        return
    with labelled_progress() as progress:
        outcome = choose_search(
            settings, dataset, command=command, split=split, runs_root=runs, progress=progress
        )
    console.print(choice_table(outcome.choice))
    console.print(styled(outcome.choice.line()))
    console.print(styled(f"written to {outcome.path}"))
    console.print(styled(f"runs and comparison in {outcome.compare_dir}"))
