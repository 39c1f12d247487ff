"""Approximate (and exact) nearest-neighbour search over dense vectors with string ids.

One small interface (``ANNIndex``: index/append/delete/search/save/load) and FAISS backends behind a
factory (``create_ann``), in the manner of txtai's ``ann`` package.
"""

from recommender.ann.base import ANNIndex, IndexLoadError
from recommender.ann.factory import BACKENDS, create_ann, load_ann

__all__ = ["ANNIndex", "IndexLoadError", "BACKENDS", "create_ann", "load_ann"]
