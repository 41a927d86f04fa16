"""Benchmarks: ``python -m s2e_tune.bench <name> ...`` (figures go to BENCHMARKS.md)."""
