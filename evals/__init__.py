"""Evaluation: metrics, datasets and splits, the strategy suite, and perf benchmarks."""
