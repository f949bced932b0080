"""Can the expand action be learned? Its headroom and a held-out selector, before any training.

Training a policy on a CPU costs hours; this check costs a minute and says whether the
feedback holds anything to learn. Its input is two enumerated rollout logs (``shopagent
collect --strategy expand --candidates enumerate``), one of train requests and one of dev
requests: every call of the expand action (copy, one or two added candidate words) searched
through the one tool-call path and scored with NDCG@10. The copy is the request as the prompt
shows it, respelled by the search system (``tools.search.respelling``): the model's zero point.
For the dev requests it reports, each against the copy:

- **always the top candidate word**: the worked example's habit -- what a policy that learned a
  habit instead of a judgment scores;
- **oracle**: each request's best call -- what a policy that knew the judgments would score;
- **selector**: a gradient-boosted regressor fitted on the train requests' gains from what the
  expand prompt shows the policy (MiniLM embeddings of the request and of the call's added
  words and their product, the word's place in the candidate list, how many words the call
  adds, the request's length). On each dev request it takes the call it predicts best when the
  prediction clears a margin, and copies otherwise; the margin is chosen on out-of-fold
  predictions for the train requests, never on dev.

The selector is not the policy. It is a probe of whether the gains that the oracle shows carry
over from train to unseen requests through the information the prompt holds. When it does not
beat the copy on dev, the oracle's headroom is the judgments' noise and a 135M model trained on
the same feedback has nothing to learn from it but noise; when it does, its score is a
realistic target for the policy. Calls with a ``fix`` argument (a sampled model may write one)
are not part of the enumeration and are skipped.

Run: ``python -m rl.headroom --train enum-train.jsonl --dev enum-dev.jsonl [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent.protocol.tool_calls import ParseClass, parse_tool_calls
from agent.protocol.tool_schemas import SEARCH_PRODUCTS, schema_for
from rl.datasets import RolloutGroup, read_rollouts
from rl.enumerated import ENUMERATED_MODEL_ID
from tools.errors import BadInput, ShopagentError, one_line
from tools.metrics.paired import MetricComparison, compare_values

CANDIDATES_PREFIX = "Candidate words:"
#: Margins the selector may require of a predicted gain before it leaves the copy.
MARGINS: tuple[float, ...] = (0.0, 0.0025, 0.005, 0.01, 0.02, 0.05, float("inf"))
FOLDS = 3
SEED = 0

#: texts -> unit-length embeddings, one row per text.
Encoder = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """One non-copy call of the expand action for one request, and what it gained over the copy."""

    #: The candidate words the call adds, space-joined.
    words: str
    #: Place of the first added word in the prompt's candidate list (-1: none added).
    rank: int
    added: int
    gain: float


@dataclass(slots=True)
class RequestOutcomes:
    """Every call of one request: the copy's NDCG@10 and the other calls' gains over it."""

    query_id: str
    query_text: str
    copy: float
    calls: list[CallOutcome] = field(default_factory=list)

    def best(self) -> float:
        return self.copy + max([0.0, *(call.gain for call in self.calls)])


@dataclass(frozen=True, slots=True)
class HeadroomRow:
    """One way of choosing calls, scored on the dev requests against the copy."""

    choice: str
    changed: int
    comparison: MetricComparison


@dataclass(slots=True)
class HeadroomReport:
    train_requests: int
    dev_requests: int
    margin: float
    train_selector_gain: float
    rows: list[HeadroomRow]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def markdown(self) -> str:
        head = "| choice (dev) | NDCG@10 | vs copy | 95% CI | W/T/L | Wilcoxon p | changed |"
        lines = [head, "| --- | --- | --- | --- | --- | --- | --- |"]
        for row in self.rows:
            c = row.comparison
            p = "—" if c.wilcoxon_p is None else f"{c.wilcoxon_p:.3g}"
            lines.append(
                f"| {row.choice} | {c.mean_b:.4f} | {c.delta:+.4f} | "
                f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}] | {c.wins}/{c.ties}/{c.losses} | {p} | "
                f"{row.changed} |"
            )
        lines.append(
            f"\n{self.train_requests} train / "
            f"{self.dev_requests} dev requests; selector margin {self.margin:g} "
            f"(out-of-fold train gain {self.train_selector_gain:+.4f})"
        )
        return "\n".join(lines)


def read_outcomes(path: Path) -> list[RequestOutcomes]:
    """The enumerated expand rollouts of one log, one entry per request."""
    data = read_rollouts(path, model_id=ENUMERATED_MODEL_ID)
    groups = [g for g in data.groups if g.key.strategy == "expand"]
    if not groups:
        raise BadInput(f"{path}: no enumerated expand rollouts (collect --candidates enumerate)")
    return [request_outcomes(group) for group in groups]


def request_outcomes(group: RolloutGroup) -> RequestOutcomes:
    """One request's calls, against its copy (sample 0, ``rl.enumerated``)."""
    copy = next((r for r in group.rollouts if r.sample_index == 0), None)
    if copy is None:
        raise BadInput(f"request {group.key.query_id}: its copy call (sample 0) is missing")
    candidates = prompt_candidates(group.messages)
    outcomes = RequestOutcomes(group.key.query_id, group.query_text, copy.ndcg)
    schemas = [schema_for(SEARCH_PRODUCTS)]
    for rollout in group.rollouts:
        if rollout.sample_index == 0:
            continue
        parsed = parse_tool_calls(rollout.completion, schemas)
        if parsed.parse_class != ParseClass.VALID or not parsed.calls:
            continue
        arguments = parsed.calls[0].arguments
        added = [str(w) for w in arguments.get("add_terms") or []]
        if not added or arguments.get("fix"):
            continue
        ranks = [candidates.index(w) for w in added if w in candidates]
        outcomes.calls.append(
            CallOutcome(
                words=" ".join(added),
                rank=min(ranks) if ranks else -1,
                added=len(added),
                gain=rollout.ndcg - copy.ndcg,
            )
        )
    return outcomes


def prompt_candidates(messages: Sequence[dict[str, str]]) -> list[str]:
    """The candidate words the request's expand prompt listed (its last user message)."""
    for message in reversed(messages):
        if message["role"] != "user":
            continue
        for line in message["content"].splitlines():
            if line.startswith(CANDIDATES_PREFIX):
                listed = line[len(CANDIDATES_PREFIX) :]
                return [w.strip() for w in listed.split(",") if w.strip()]
        return []
    return []


def call_features(requests: Sequence[RequestOutcomes], encode: Encoder) -> np.ndarray:
    """One row per call, in request order: what the expand prompt shows about that call."""
    texts = sorted({r.query_text for r in requests} | {c.words for r in requests for c in r.calls})
    if not texts:
        return np.zeros((0, 0))
    vectors = dict(zip(texts, encode(texts), strict=True))
    rows = []
    for request in requests:
        query = vectors[request.query_text]
        length = len(request.query_text.split())
        for call in request.calls:
            words = vectors[call.words]
            facts = [call.rank, call.added, length]
            rows.append(np.concatenate([query * words, words, facts]))
    return np.asarray(rows, dtype=np.float32)


def choose(
    requests: Sequence[RequestOutcomes], predicted: np.ndarray, margin: float
) -> list[int | None]:
    """Per request, the index of the call predicted best when it clears ``margin``, else None."""
    choices: list[int | None] = []
    start = 0
    for request in requests:
        stop = start + len(request.calls)
        chosen: int | None = None
        if stop > start:
            best = int(np.argmax(predicted[start:stop]))
            if predicted[start + best] > margin:
                chosen = best
        choices.append(chosen)
        start = stop
    return choices


def scores_of(
    requests: Sequence[RequestOutcomes], choices: Sequence[int | None]
) -> dict[str, float]:
    return {
        r.query_id: r.copy + (0.0 if c is None else r.calls[c].gain)
        for r, c in zip(requests, choices, strict=True)
    }


def fit_selector(
    train: Sequence[RequestOutcomes], encode: Encoder, *, seed: int = SEED
) -> tuple[Any, float, float]:
    """The regressor fitted on every train call, its margin, and its out-of-fold train gain."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.model_selection import GroupKFold

    features = call_features(train, encode)
    gains = np.array([c.gain for r in train for c in r.calls])
    groups = np.array([i for i, r in enumerate(train) for _ in r.calls])
    if len(gains) < 2 * FOLDS or len(set(groups.tolist())) < FOLDS:
        raise BadInput(f"the selector needs calls of at least {FOLDS} train requests")

    def regressor() -> Any:
        return HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, random_state=seed)

    out_of_fold = np.zeros(len(gains))
    for fit_rows, held_rows in GroupKFold(n_splits=FOLDS).split(features, gains, groups):
        model = regressor().fit(features[fit_rows], gains[fit_rows])
        out_of_fold[held_rows] = model.predict(features[held_rows])
    copy_mean = float(np.mean([r.copy for r in train]))
    by_margin = {
        margin: float(np.mean(list(scores_of(train, choose(train, out_of_fold, margin)).values())))
        - copy_mean
        for margin in MARGINS
    }
    margin = max(MARGINS, key=lambda m: (by_margin[m], m))
    return regressor().fit(features, gains), margin, by_margin[margin]


def headroom(
    train: Sequence[RequestOutcomes],
    dev: Sequence[RequestOutcomes],
    encode: Encoder,
    *,
    seed: int = SEED,
) -> HeadroomReport:
    """The habit, the oracle and the held-out selector on ``dev``, each against the copy."""
    model, margin, train_gain = fit_selector(train, encode, seed=seed)
    copies = {r.query_id: r.copy for r in dev}
    predicted = model.predict(call_features(dev, encode)) if any(r.calls for r in dev) else []
    selected = choose(dev, np.asarray(predicted), margin)
    top_word = [
        next((i for i, c in enumerate(r.calls) if c.rank == 0 and c.added == 1), None) for r in dev
    ]
    choices: list[tuple[str, list[int | None] | None]] = [
        ("always the top candidate word", top_word),
        ("oracle (best call per request)", None),
        ("selector (fitted on train)", selected),
    ]
    rows = []
    for name, picks in choices:
        if picks is None:
            scores = {r.query_id: r.best() for r in dev}
            changed = sum(r.best() != r.copy for r in dev)
        else:
            scores = scores_of(dev, picks)
            changed = sum(p is not None for p in picks)
        comparison = compare_values("ndcg@10", copies, scores, seed=seed)
        rows.append(HeadroomRow(name, changed, comparison))
    return HeadroomReport(len(train), len(dev), margin, train_gain, rows)


def minilm_encoder() -> Encoder:
    from tools.search.embeddings import load_sentence_model

    model = load_sentence_model()
    return lambda texts: model.encode(texts, normalize_embeddings=True, batch_size=256)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--train", type=Path, required=True, help="Enumerated log of train requests."
    )
    parser.add_argument("--dev", type=Path, required=True, help="Enumerated log of dev requests.")
    parser.add_argument("--out", type=Path, help="Also write the report here as JSON.")
    args = parser.parse_args(argv)
    try:
        train = read_outcomes(args.train)
        dev = read_outcomes(args.dev)
        report = headroom(train, dev, minilm_encoder())
    except ShopagentError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    print(report.markdown())
    if args.out:
        from tools.atomic_write import write_text

        write_text(args.out, json.dumps(report.to_dict(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
