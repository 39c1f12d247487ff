"""The one small interface every dense embedder implements: a query role and a passage role.

Enterprise needs and research results are not the same kind of text, and asymmetric models (e5, bge)
are trained with different prefixes for each side; keeping the roles explicit keeps that right.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

Role = Literal["query", "passage"]


class Embedder(ABC):
    """Texts in, L2-normalised float32 vectors out, in batches, with a progress bar on long runs."""

    name: str
    dim: int
    batch_size: int = 64
    progress_threshold: int = 256  # show a bar only when there is something to wait for

    @abstractmethod
    def _encode_batch(self, texts: list[str], role: Role) -> np.ndarray:
        """Encode one batch; subclasses need not normalise."""

    def encode(self, texts: Sequence[str], role: Role, progress: bool | None = None) -> np.ndarray:
        """Encode any number of texts for a role, batched; returns an (n, dim) float32 array."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        show = progress if progress is not None else len(texts) >= self.progress_threshold
        # Sorting by length keeps padding (and so time) down for batched transformer encoders.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with tqdm(total=len(texts), desc=f"embedding ({self.name}, {role})", unit="text", disable=not show) as bar:
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                vectors = np.asarray(self._encode_batch([texts[i] for i in idx], role), dtype=np.float32)
                out[idx] = vectors
                bar.update(len(idx))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def cache_key_name(self, role: Role) -> str:
        """The name a role's vectors are cached under: a runtime whose vectors differ uses its own."""
        return self.name

    def embed_queries(self, texts: Sequence[str], progress: bool | None = None) -> np.ndarray:
        return self.encode(texts, "query", progress)

    def embed_passages(self, texts: Sequence[str], progress: bool | None = None) -> np.ndarray:
        return self.encode(texts, "passage", progress)
