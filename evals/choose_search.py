"""``shopagent eval choose-search``: does fusing concepts into the chat's keyword search help on
this dataset? Measured, then recorded for the chat.

Why a measurement per dataset: the concept index finds products that share no word with the
request, which helps where shoppers and titles use different words and hurts where keywords
already rank well (an earlier raw-vs-hybrid measurement gained on Chorus and lost on Home Depot
dev). So the two searches the chat could run are evaluated on the dataset's dev split, through
the one tool path and without a model: ``copy`` (a ``search_products`` call that copies the
respelled request: the keyword search) and ``fused`` (the same call fused with the concept
index's dense ranking, ``agent.protocol.tool_search``). Their paired NDCG@10 difference and its
95 % bootstrap interval come from ``evals.compare``; the rule (``decided_search``) fuses only
when the whole interval lies above 0. The record (``tools.settings.search_choice``) goes beside
the dataset's indexes; both runs and the comparison stay under the runs folder.

Chorus has no dev split of its own: its ``dev`` is the hash half of its judged queries
(``tools.catalog.splits``), which is what it is measured on unless ``--split`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evals.compare import Comparison, compare_runs
from evals.report import MetricTable, number, terminal_table
from evals.suite import EvalOptions, EvalOutcome, run_eval
from tools.catalog.judgments import Judgments
from tools.settings.config import Settings
from tools.settings.search_choice import (
    FUSED,
    METRIC,
    SearchChoice,
    decided_search,
    utc_now,
    write_search_choice,
)

#: The keyword search and the fused one, as eval strategies (``agent.protocol.strategies``).
KEYWORDS_STRATEGY = "copy"
FUSED_STRATEGY = "fused"
DEFAULT_SPLIT = "dev"

#: ``progress(strategy, done, total)``.
ChoiceProgress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class ChoiceOutcome:
    """The record written, where, and what it was read from."""

    choice: SearchChoice
    path: Path
    comparison: Comparison
    compare_dir: Path
    keywords: EvalOutcome
    fused: EvalOutcome


def choose_search(
    settings: Settings,
    dataset: str,
    *,
    command: str,
    split: str = DEFAULT_SPLIT,
    runs_root: Path = Path("runs"),
    judgments: Judgments | None = None,
    progress: ChoiceProgress | None = None,
) -> ChoiceOutcome:
    """Run both searches on ``split``, compare them paired, write the dataset's record.

    ``command`` is what the record says made it. ``judgments`` replaces the dataset's own
    (tests pass a small set). The fused run goes first: a concept index that cannot answer
    stops the command before anything is measured or written.
    """
    outcomes: dict[str, EvalOutcome] = {}
    for strategy in (FUSED_STRATEGY, KEYWORDS_STRATEGY):
        options = EvalOptions(dataset, split, strategy, runs_root=runs_root)
        step = None if progress is None else _labelled(progress, strategy)
        outcomes[strategy] = run_eval(settings, options, judgments=judgments, progress=step)
    keywords, fused = outcomes[KEYWORDS_STRATEGY], outcomes[FUSED_STRATEGY]
    comparison, compare_dir = compare_runs(keywords.run_dir, fused.run_dir, runs_root=runs_root)
    row = comparison.row(METRIC)
    choice = SearchChoice(
        dataset=dataset,
        search=decided_search(row.ci_low),
        split=split,
        queries=row.queries,
        keywords=row.mean_a,
        fused=row.mean_b,
        delta=row.delta,
        ci_low=row.ci_low,
        ci_high=row.ci_high,
        confidence=comparison.confidence,
        wins=row.wins,
        ties=row.ties,
        losses=row.losses,
        date=utc_now(),
        command=command,
        catalog_version=keywords.report.catalog_version,
    )
    path = write_search_choice(settings, choice)
    return ChoiceOutcome(choice, path, comparison, compare_dir, keywords, fused)


def _labelled(progress: ChoiceProgress, label: str) -> Callable[[int, int], None]:
    return lambda done, total: progress(label, done, total)


CHOICE_HEADERS = ("search", METRIC, "Δ", "CI", "win/tie/loss", "chosen")


def choice_table(choice: SearchChoice) -> MetricTable:
    """One screen: both searches, the paired difference, and which one the chat will run."""
    fused_chosen = choice.search == FUSED
    rows = [
        [
            f"keywords ({KEYWORDS_STRATEGY})",
            number(choice.keywords),
            "",
            "",
            "",
            _mark(not fused_chosen),
        ],
        [
            f"keywords + concepts ({FUSED_STRATEGY})",
            number(choice.fused),
            f"{choice.delta:+.4f}",
            f"[{choice.ci_low:+.4f}, {choice.ci_high:+.4f}]",
            f"{choice.wins}/{choice.ties}/{choice.losses}",
            _mark(fused_chosen),
        ],
    ]
    title = (
        f"{choice.dataset} · {choice.split} · {choice.queries:,} queries · "
        f"{choice.confidence:.0%} paired bootstrap CI"
    )
    return terminal_table(title, CHOICE_HEADERS, rows, text_columns=("search", "chosen"))


def _mark(chosen: bool) -> str:
    return "✓" if chosen else ""
