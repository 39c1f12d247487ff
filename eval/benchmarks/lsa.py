"""A fast LSA embedder (character n-gram TF-IDF -> truncated SVD) for ANN scale tests at 800,000 records.

e5-small needs hours of CPU for 800k texts; ANN speed and recall against exact search depend on the
vectors being real, clustered text embeddings, not on their semantic quality. LSA gives such vectors in
minutes: character 1-3-gram TF-IDF and an SVD fitted on a sample, then applied in batches. The n-gram
vocabulary is capped (``max_features``) because randomized SVD holds an n_features x dim dense matrix
(hashing to 2**20 columns made that 3 GB). It implements the project's ``Embedder`` interface.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from embeddings.base import Embedder, Role


class NotFittedError(RuntimeError):
    """The embedder was asked to encode before ``fit``."""


class LsaEmbedder(Embedder):
    """Char n-gram TF-IDF projected to ``dim`` dimensions by an SVD, both fitted on a sample."""

    batch_size = 20_000
    progress_threshold = 50_000

    def __init__(self, dim: int = 384, ngram_range: tuple[int, int] = (1, 3), max_features: int = 100_000,
                 seed: int = 0) -> None:
        self.dim = dim
        self.name = f"lsa-char{ngram_range[0]}{ngram_range[1]}-{dim}"
        self.tfidf = TfidfVectorizer(
            analyzer="char", ngram_range=ngram_range, max_features=max_features, min_df=2, sublinear_tf=True,
            dtype=np.float32,
        )
        self.svd = TruncatedSVD(n_components=dim, algorithm="randomized", n_iter=4, random_state=seed)
        self.fitted = False

    def fit(self, texts: Sequence[str]) -> LsaEmbedder:
        """Learn IDF weights and the projection from a sample (a few tens of thousands of texts suffice)."""
        if len(texts) <= self.dim:
            raise ValueError(f"need more than {self.dim} texts to fit a {self.dim}-d LSA model, got {len(texts)}")
        self.svd.fit(self.tfidf.fit_transform(texts))
        self.fitted = True
        return self

    def _encode_batch(self, texts: list[str], role: Role) -> np.ndarray:
        """Queries and passages share one space: LSA has no asymmetric roles."""
        if not self.fitted:
            raise NotFittedError("call fit(sample) before encoding")
        return self.svd.transform(self.tfidf.transform(texts)).astype(np.float32)
