"""Benchmarks of the decision engine and the API handlers; run with `python -m bench.run`."""
