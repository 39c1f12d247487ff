"""Any sentence-transformers model, by Hugging Face name or by local folder (``st:<name or folder>``).

Users in China set HF_ENDPOINT to a mirror or copy a folder such as bge-base-zh-v1.5; either way the
model's own query and passage prompts (from its config) are used for the two roles.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from embeddings.base import Embedder, Role


class ModelLoadError(RuntimeError):
    """A model that cannot be loaded, with what to check."""


class SentenceTransformerEmbedder(Embedder):
    """Wraps SentenceTransformer.encode with the model's query/passage prompts where it defines them."""

    batch_size = 32

    def __init__(self, name_or_path: str, device: str = "cpu") -> None:
        try:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(name_or_path, device=device)
        except Exception as exc:  # network errors, missing folders and bad configs all land here
            if Path(name_or_path).exists():
                hint = "the folder exists but is not a sentence-transformers model"
            else:
                hint = "no such local folder; a Hugging Face name needs network access, HF_ENDPOINT or a cached copy"
            raise ModelLoadError(f"cannot load sentence-transformers model '{name_or_path}': {exc} ({hint})") from exc
        self.name = f"st:{name_or_path}"
        model = self._model
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(dimension() or 0)
        prompts = getattr(self._model, "prompts", {}) or {}
        self._prompt_names = {
            "query": next((p for p in ("query", "search_query") if p in prompts), None),
            "passage": next((p for p in ("passage", "document", "search_document") if p in prompts), None),
        }
        self._lock = threading.Lock()

    def _encode_batch(self, texts: list[str], role: Role) -> np.ndarray:
        with self._lock:
            return self._model.encode(
                texts,
                prompt_name=self._prompt_names[role],
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
