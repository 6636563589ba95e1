"""Benchmarks: `python -m bench --help`. They print figures; they never pass or fail on a time."""
