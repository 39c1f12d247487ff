"""Approximate (and exact) nearest-neighbour search over dense vectors with string ids.

One small interface (``ANNIndex``: index/append/delete/search/vectors/present/save/load/ids) and backends
behind a factory (``create_ann``), in the manner of txtai's ``ann`` package: FAISS in this process
(flat, hnsw, ivf) and Milvus (a Milvus Lite file or a server). ``index``/``append`` take optional
per-vector metadata (``recommender.filters.filter_values``) and ``search`` an optional ``ResultFilters``;
a backend that can filter inside the index says so with ``filters_pushdown``, the others ignore both.
"""

from recommender.ann.base import ANNIndex, IndexLoadError
from recommender.ann.factory import BACKENDS, create_ann, load_ann

__all__ = ["ANNIndex", "IndexLoadError", "BACKENDS", "create_ann", "load_ann"]
