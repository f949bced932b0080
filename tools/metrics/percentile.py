"""The one percentile: linear interpolation between the two nearest ranks.

This is numpy's default (``np.percentile(..., method="linear")``, Hyndman & Fan type 7, the
spreadsheet ``PERCENTILE.INC``). It was chosen over nearest-rank, which the benchmarks used
before, because a p95 from an eval report and from a benchmark must mean the same thing, and
because it is the figure numpy, pandas and most dashboards print, so ours can be checked
against theirs. On few samples it also moves smoothly instead of jumping from one sample to
the next. It never reports a value outside the samples' range.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (``q`` in [0, 100]) of ``values``, linearly interpolated."""
    if not 0 <= q <= 100 or math.isnan(q):
        raise ValueError(f"a percentile is between 0 and 100, got {q}")
    ordered = sorted(float(v) for v in values)
    if not ordered:
        raise ValueError("no values to take a percentile of")
    position = q / 100 * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    fraction = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * fraction
