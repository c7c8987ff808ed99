"""Benchmarks: ``python -m bench`` runs them all; ``python -m bench.bench_<topic>`` runs one."""
