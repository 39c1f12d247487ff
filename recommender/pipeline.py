"""Assemble the configured signals into hybrid indexes (the factory the CLI, eval and service share)."""

from __future__ import annotations

import re
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


def build_signals(settings: PipelineSettings, kind: Kind = "result") -> list[Signal]:
    """The signals named in the settings, each given its tokenizer or embedder (and, for the milvus backend,
    the collection of this side's vectors)."""
    tokenizer = get_tokenizer()
    signals: list[Signal] = []
    for name in settings.signals:
        if name == "dense":
            cache = settings.cache_dir if settings.use_cache else None
            embedder = create_embedder(settings.model, cache, settings.e5_runtime)
            signals.append(DenseSignal(embedder, settings.ann_backend, **settings.ann_options(kind)))
        elif name == "bm25":
            signals.append(BM25Signal(tokenizer.tokenize, name="bm25"))
        elif name == "char":
            signals.append(TfidfSignal("char", "char", (1, 2), preprocess=char_preprocess, sublinear_tf=False))
        elif name == "word":
            signals.append(TfidfSignal("word", tokenizer.tokenize, (1, 1)))
    return signals


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
