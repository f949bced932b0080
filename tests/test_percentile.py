"""One percentile (linear, numpy's default), used by eval reports and benchmarks alike."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evals.perf.timing import Latencies
from evals.suite import latency_summary
from tools.metrics.percentile import percentile

samples = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=60
)


@given(samples, st.floats(min_value=0, max_value=100))
def test_matches_numpy_linear(values: list[float], q: float) -> None:
    expected = float(np.percentile(values, q, method="linear"))
    assert percentile(values, q) == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert min(values) <= percentile(values, q) <= max(values)


def test_interpolates_between_ranks_unlike_nearest_rank() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 50) == 25.0  # nearest-rank would say 20
    assert percentile(values, 95) == pytest.approx(38.5)  # nearest-rank would say 40
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile([7.0], 95) == 7.0
    assert percentile(reversed(values), 50) == 25.0  # order of the input does not matter


def test_refuses_nothing_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    for q in (-1, 100.5, float("nan")):
        with pytest.raises(ValueError, match="between 0 and 100"):
            percentile([1.0], q)


def test_reports_and_benchmarks_agree() -> None:
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    timing = Latencies(samples_ms=list(values))
    summary = latency_summary(values)
    assert summary["p95"] == timing.p95() == percentile(values, 95)
    assert summary["p50"] == timing.p50() == 3.5
    assert summary["mean"] == pytest.approx(31 / 8)
    assert np.isnan(Latencies().p95())
    assert latency_summary([]) == {"p50": 0.0, "p95": 0.0, "mean": 0.0}
