"""Assemble the configured signals into hybrid indexes (the factory the CLI, eval and service share)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from embeddings.factory import create_embedder
from embeddings.tokenizer import get_tokenizer
from recommender.dense import DenseSignal
from recommender.hybrid import HybridIndex
from recommender.lexical import BM25Signal, TfidfSignal
from recommender.records import Kind
from recommender.settings import PipelineSettings
from recommender.signal import Signal

_NOT_TEXT = re.compile(r"[\s\W_]+", re.UNICODE)


def char_preprocess(text: str) -> str:
    """Character n-grams see only letters, digits and Han characters, lower-cased."""
    return _NOT_TEXT.sub("", text.lower())


def _dense(settings: PipelineSettings, kind: Kind) -> Signal:
    cache = settings.cache_dir if settings.use_cache else None
    embedder = create_embedder(settings.model, cache, settings.e5_runtime)
    return DenseSignal(embedder, settings.ann_backend, **settings.ann_options(kind))  # milvus: this side's collection


def _static(settings: PipelineSettings, kind: Kind) -> Signal:
    # No embedding cache: a table lookup is cheaper than the cache's own lookup. Documents' full texts, not
    # their titles: a static model costs per word, not per 512-token window (queries keep their title). Milvus
    # keeps one collection per side for the dense signal, so this one stays in FAISS there.
    embedder = create_embedder(f"static:{settings.static_model}")
    backend = "flat" if settings.ann_backend in ("milvus", "pgvector") else settings.ann_backend
    return DenseSignal(embedder, backend, name="static", full_passages=True)


def _bm25(settings: PipelineSettings, kind: Kind) -> Signal:
    return BM25Signal(get_tokenizer().tokenize, name="bm25")


def _char(settings: PipelineSettings, kind: Kind) -> Signal:
    return TfidfSignal("char", "char", (1, 2), preprocess=char_preprocess, sublinear_tf=False)


def _word(settings: PipelineSettings, kind: Kind) -> Signal:
    return TfidfSignal("word", get_tokenizer().tokenize, (1, 1))


# Signals by name (TECHMATCH_SIGNALS, --signals, a saved index's manifest). A new signal is one file (a
# ``recommender.signal.Signal``) and one line here: name -> factory from the settings and the side indexed.
SIGNALS: dict[str, Callable[[PipelineSettings, Kind], Signal]] = {
    "dense": _dense,  # e5-small (or any embedder) over titles, in an ANN index
    "bm25": _bm25,  # BM25 over jieba words
    "char": _char,  # TF-IDF over character 1-2-grams
    "word": _word,  # TF-IDF over jieba words
    "static": _static,  # static word vectors distilled from e5-small (techmatch distil-static), full documents
}


def build_signals(settings: PipelineSettings, kind: Kind = "result") -> list[Signal]:
    """The signals named in the settings, each given its tokenizer or embedder (and, for the milvus backend,
    the collection of this side's vectors)."""
    return [SIGNALS[name](settings, kind) for name in settings.signals]


def new_index(kind: Kind, settings: PipelineSettings | None = None) -> HybridIndex:
    settings = settings or PipelineSettings()
    return HybridIndex(kind, build_signals(settings, kind), settings.weights, settings.rrf_k, settings.depth)


def open_index(folder: str | Path, kind: Kind, settings: PipelineSettings | None = None) -> HybridIndex:
    """Load a saved index with the signals, model and weights its manifest names."""
    from recommender.ann.base import read_manifest

    folder = Path(folder)
    info = read_manifest(folder, f"hybrid-{kind}")
    base = settings or PipelineSettings()
    overrides = {"signals": info["signals"], "weights": info.get("weights", base.weights)}
    if info.get("model"):
        if settings is not None and "model" in settings.model_fields_set and settings.model != info["model"]:
            from recommender.ann.base import IndexLoadError

            raise IndexLoadError(
                f"{folder}: index was built with model '{info['model']}', not '{settings.model}'; "
                "rebuild it with 'techmatch index --model ...' or drop --model"
            )
        overrides["model"] = info["model"]
    configured = base.model_copy(update=overrides)
    index = new_index(kind, configured)
    index.load(folder)
    return index
