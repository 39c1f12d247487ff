"""Benchmarks: quality and speed of every signal and of the default hybrid on judged data, and scale.

``python -m eval.benchmarks.run_all`` writes RESULTS.md and figures/; ``python -m eval.benchmarks.scale``
writes SCALE.md. Each system runs in its own process so peak memory is that system's alone.
"""
