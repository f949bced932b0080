"""Speed and memory benchmarks: each prints figures and a ratio against the bare library."""
