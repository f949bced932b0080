"""What the ``shopagent`` commands share: option types, progress callbacks, ``--json`` output.

The commands live where the work they drive lives (``cli.py`` for data, indexes, search, the
model and the chat; ``evals/commands.py`` and ``rl/commands.py`` for evaluation and training);
these pieces are the terminal's, so every command declares ``--dataset`` and reports progress
the same way.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, TaskID

from agent.terminal.render import errors, progress_bar, warning_line
from tools.names import check_name
from tools.settings.config import Settings


def dataset_name(name: str) -> str:
    """``--dataset``, checked by the rule for every name that becomes a folder
    (``tools.names``) before any command uses it: ``search --dataset ../../etc`` was read as a
    path under the home's ``indexes/``, where ``import`` and ``index`` refused it."""
    check_name("dataset", name)
    return name


DatasetOption = Annotated[
    str,
    typer.Option(
        "--dataset",
        "-d",
        help="Dataset name (chorus, homedepot or an imported name).",
        callback=dataset_name,
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document on stdout and nothing else there."),
]
RunsOption = Annotated[Path, typer.Option(help="Folder the run reports go to.")]


def print_json(document: object) -> None:
    """One JSON document on stdout, unstyled and unwrapped (what ``--json`` promises)."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")


def progress_task(bar: Progress, label: str) -> Callable[[int, int], None]:
    """A progress callback that knows its total only once the split is chosen."""
    task = bar.add_task(label, total=None)

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return advance


@contextmanager
def labelled_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar with a task per label, added at the label's first report."""
    with progress_bar() as bar:
        tasks: dict[str, TaskID] = {}

        def progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total, completed=done)
            bar.update(tasks[label], completed=done, total=total)

        yield progress


def progress_for(json_output: bool) -> Progress:
    """The progress bar; on stderr with ``--json``, so stdout holds the document alone."""
    bar = progress_bar()
    return Progress(*bar.columns, console=errors) if json_output else bar


def warn_if_stale(settings: Settings, dataset: str) -> None:
    """One line on stderr when the indexes predate the catalog (stdout stays the results)."""
    from tools.stores import stale_index_reason

    reason = stale_index_reason(settings, dataset)
    if reason:
        warning_line(reason)
