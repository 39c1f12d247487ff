"""Signals, embedders and ANN backends are registered by name in one place each; a saved index's manifest
decides how it loads. A new signal is one class plus one registry line: shown with a signal defined here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from embeddings.factory import UnknownModelError, check_spec
from recommender.ann import IndexLoadError, create_ann, load_ann
from recommender.pipeline import SIGNALS, new_index, open_index
from recommender.records import Record
from recommender.settings import PipelineSettings
from recommender.signal import Hits, Signal, SlotTable, Texts, top_hits

RESULTS = [Record("R1", "锂电池正极材料"), Record("R2", "光伏组件封装"), Record("R3", "锂电池隔膜涂层")]


class SharedCharacters(Signal):
    """A toy signal: how many distinct characters a document shares with the query."""

    name = "chars"

    def __init__(self) -> None:
        self.slots = SlotTable()
        self.docs: list[set[str]] = []

    def fit(self, ids: Sequence[str], docs: Sequence[Texts], metadata: object = None) -> None:
        self.slots.reset(ids)
        self.docs = [set(d.text) for d in docs]

    def upsert(self, ids: Sequence[str], docs: Sequence[Texts], metadata: object = None) -> None:
        self.slots.append(ids)
        self.docs += [set(d.text) for d in docs]

    def delete(self, ids: Sequence[str]) -> None:
        self.slots.delete(ids)

    def search(self, queries: Sequence[Texts], depth: int, filters: object = None) -> list[Hits]:
        return [top_hits(np.array([len(set(q.text) & d) for d in self.docs], dtype=float), self.slots, depth,
                         self.slots.alive_mask()) for q in queries]

    def score(self, queries: Sequence[Texts], ids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        return [np.array([len(set(q.text) & self.docs[self.slots.row[i]]) for i in row], dtype=np.float32)
                for q, row in zip(queries, ids)]

    def save(self, folder: Path) -> list[str]:
        (folder / "chars.json").write_text(json.dumps([self.slots.ids, [sorted(d) for d in self.docs]]))
        return ["chars.json"]

    def load(self, folder: Path) -> None:
        ids, docs = json.loads((folder / "chars.json").read_text())
        self.slots.ids, self.docs = ids, [set(d) for d in docs]
        self.slots.row = {d: i for i, d in enumerate(ids) if d is not None}


def test_a_signal_registered_by_name_is_built_saved_and_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(ValueError, match="unknown signal"):
        PipelineSettings(signals=["chars"])
    monkeypatch.setitem(SIGNALS, "chars", lambda settings, kind: SharedCharacters())  # the one line
    settings = PipelineSettings(signals=["chars", "bm25"])
    index = new_index("result", settings)
    index.build(RESULTS)
    assert index.search(["锂电池隔膜"], 1)[0][0].id == "R3"
    index.save(tmp_path / "idx")
    loaded = open_index(tmp_path / "idx", "result")  # no settings given: the manifest names the signals
    assert list(loaded.signals) == ["chars", "bm25"]
    assert [m.id for m in loaded.search(["光伏"], 3)[0]] == [m.id for m in index.search(["光伏"], 3)[0]]


def test_model_specs_are_checked_against_the_embedder_registry():
    assert check_spec("e5-small") == ("e5-small", "")
    assert check_spec("st:/models/bge-base-zh-v1.5") == ("st", "/models/bge-base-zh-v1.5")
    for bad in ("bert", "st:", "e5-small:x"):
        with pytest.raises(UnknownModelError, match="unknown model"):
            check_spec(bad)
    with pytest.raises(ValueError, match="unknown model 'bert'"):
        PipelineSettings(model="bert")


def test_the_manifest_names_the_backend_a_folder_loads_with(tmp_path: Path):
    vectors = np.eye(4, 8, dtype=np.float32)
    index = create_ann("hnsw", 8, "m")
    index.index(["a", "b", "c", "d"], vectors)
    index.save(tmp_path / "ann")
    assert load_ann(tmp_path / "ann").backend == "hnsw"
    with pytest.raises(ValueError, match="ann_backend must be one of flat, hnsw, ivf, milvus"):
        PipelineSettings(ann_backend="annoy")
    manifest = tmp_path / "ann" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"backend": "hnsw"', '"backend": "annoy"'))
    with pytest.raises(IndexLoadError, match="ANN backend 'annoy'"):
        load_ann(tmp_path / "ann")
