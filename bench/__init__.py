"""Benchmarks paired with a bare baseline in the same run (perf-notes.md §8, DESIGN.md §6).

Run ``python -m bench.run_search`` (see bench/README.md); shared machinery is in ``bench.runner``.
"""
