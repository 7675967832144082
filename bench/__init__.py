"""Benchmarks paired with a bare baseline in the same run (method and targets: bench/README.md).

Run ``python -m bench.run_search`` (see bench/README.md); shared machinery is in ``bench.runner``.
"""
