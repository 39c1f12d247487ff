"""The ANN contract, run against every backend (FAISS flat/HNSW/IVF in this process, and Milvus on a Milvus Lite
file): add, update, delete, search, filters, persistence across a reload and a restart; and refusal of the
wrong or damaged index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recommender.ann import ANNIndex, IndexLoadError, create_ann, load_ann
from recommender.ann.base import VectorDatabaseError
from recommender.errors import UserError
from recommender.filters import ResultFilters
from recommender.settings import PipelineSettings

BACKENDS = ["flat", "hnsw", "ivf", "milvus"]
REPO = Path(__file__).resolve().parents[1]


def unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def new_index(backend: str, folder: Path, dim: int = 16, model: str = "test-model") -> ANNIndex:
    if backend == "milvus":
        return create_ann("milvus", dim, model, uri=str(folder / "milvus.db"), collection="test_result")
    if backend == "milvus-hnsw":  # an approximate Milvus index (ef is raised to k for deep searches)
        return create_ann("milvus", dim, model, uri=str(folder / "milvus.db"), collection="test_result",
                          index_type="HNSW", index_params={"M": 16, "efConstruction": 64})
    return create_ann(backend, dim, model, **({"nlist": 4, "nprobe": 4} if backend == "ivf" else {}))


def release(index: ANNIndex) -> None:
    """Let another process open the same storage (a Milvus Lite file serves one process at a time)."""
    if hasattr(index, "close"):
        index.close()


def metadata(n: int) -> list[dict]:
    """Filter values with gaps (None) and characters a filter expression must escape."""
    fields = ["储能", "新材料", 'say "hi"\\n', None]
    return [{"field": fields[i % 4], "institution": f"大学{i % 3}", "ip_status": None if i % 5 else "授权",
             "trl": None if i % 7 == 0 else (i % 9) + 1} for i in range(n)]


@pytest.mark.parametrize("backend", [*BACKENDS, "milvus-hnsw"])
def test_search_add_update_delete_save_load(tmp_path: Path, backend: str):
    rng = np.random.default_rng(0)
    vectors = unit(rng, 200)
    ids = [f"doc-{i}" for i in range(200)]
    index = new_index(backend, tmp_path)
    index.index(ids, vectors)
    assert index.search(vectors[:3], 1) == [[(ids[i], pytest.approx(1.0, abs=1e-4))] for i in range(3)]

    new = unit(rng, 1)
    index.append(["doc-5"], new)  # update in place
    assert len(index) == 200
    assert index.search(new, 1)[0][0][0] == "doc-5"
    assert index.delete(["doc-7", "unknown"]) == 1
    assert all(hit[0] != "doc-7" for hit in index.search(vectors[7:8], 10)[0])
    index.append(["fresh"], vectors[7:8])
    assert index.search(vectors[7:8], 1)[0][0][0] == "fresh"
    assert index.present(["doc-7", "fresh", "doc-0", "nope"]) == ["fresh", "doc-0"]

    index.save(tmp_path / "ann")
    loaded = load_ann(tmp_path / "ann", model="test-model")
    assert loaded.backend == backend.split("-")[0]
    assert len(loaded) == 200 and "doc-7" not in loaded and "fresh" in loaded
    assert set(loaded.ids) == (set(ids) - {"doc-7"}) | {"fresh"}
    assert loaded.search(vectors[:20], 5) == index.search(vectors[:20], 5)
    np.testing.assert_allclose(loaded.vectors(["doc-5"]), new, atol=1e-6)
    with pytest.raises(KeyError):
        loaded.vectors(["doc-7"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_filters_pushed_down_or_ignored(tmp_path: Path, backend: str):
    rng = np.random.default_rng(1)
    vectors, queries = unit(rng, 300), unit(rng, 5)
    ids = [f"r{i}" for i in range(300)]
    meta = metadata(300)
    index = new_index(backend, tmp_path)
    index.index(ids, vectors, meta)
    cases = [ResultFilters(field="储能"), ResultFilters(field='say "hi"\\n', trl_min=3),
             ResultFilters(institution="大学1", trl_max=4), ResultFilters(ip_status="授权", trl_min=2, trl_max=8),
             ResultFilters(field="没有这个领域")]
    for filters in cases:
        hits = index.search(queries, 10, filters)
        if not index.filters_pushdown:  # FAISS: accepted and ignored; the hybrid index filters its candidates
            assert hits == index.search(queries, 10)
            continue
        # exactly the best ten among the accepted vectors (FLAT: exact search), by the same rule as accepts()
        accepted = np.array([_accepts(filters, m) for m in meta])
        scores = np.where(accepted[None, :], queries @ vectors.T, -np.inf)
        for row, got in zip(scores, hits):
            best = [ids[i] for i in np.argsort(-row)[:10] if np.isfinite(row[i])]
            assert [d for d, _ in got] == best, filters
    if index.filters_pushdown:  # metadata follows an update, and a deleted vector is never returned
        index.append(["r0"], vectors[:1], [{"field": "量子", "trl": 9}])
        assert [d for d, _ in index.search(vectors[:1], 5, ResultFilters(field="量子"))[0]] == ["r0"]
        assert index.search(vectors[:1], 5, ResultFilters(field="量子", trl_max=8)) == [[]]
        index.delete(["r0"])
        assert index.search(vectors[:1], 5, ResultFilters(field="量子")) == [[]]


def _accepts(filters: ResultFilters, meta: dict) -> bool:
    from recommender.records import Record

    extra = {k: v for k, v in meta.items() if v is not None}
    return filters.accepts(Record("x", "t", "", extra=extra))


RESTART = """
import json, sys
import numpy as np
from recommender.ann import load_ann
folder, query = sys.argv[1], np.array(json.loads(sys.argv[2]), dtype=np.float32)
index = load_ann(folder, model="test-model")
before = index.search(query, 3)[0]
index.delete([before[0][0]])
index.save(folder)
print(json.dumps({"len": len(index), "top": before}))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_persistence_across_a_restart(tmp_path: Path, backend: str):
    """Saved by one process, loaded and changed by a second, seen by a third (this one, reloading)."""
    rng = np.random.default_rng(2)
    vectors = unit(rng, 100)
    index = new_index(backend, tmp_path)
    index.index([f"d{i}" for i in range(100)], vectors)
    index.save(tmp_path / "ann")
    expected = index.search(vectors[3:4], 3)[0]
    release(index)
    proc = subprocess.run([sys.executable, "-c", RESTART, str(tmp_path / "ann"), json.dumps(vectors[3:4].tolist())],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["len"] == 99
    assert [(d, pytest.approx(s, abs=1e-5)) for d, s in answer["top"]] == expected
    reloaded = load_ann(tmp_path / "ann", model="test-model")
    assert len(reloaded) == 99 and "d3" not in reloaded
    assert reloaded.search(vectors[3:4], 2)[0][0][0] == expected[1][0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_other_model_is_refused(tmp_path: Path, backend: str):
    index = new_index(backend, tmp_path, dim=8, model="model-a")
    index.index(["a", "b"], np.eye(2, 8, dtype=np.float32))
    index.save(tmp_path / "ann")
    with pytest.raises(IndexLoadError, match="built with model 'model-a', not 'model-b'"):
        load_ann(tmp_path / "ann", model="model-b")


def test_damaged_index_is_refused(tmp_path: Path):
    index = create_ann("flat", 8, "m")
    index.index(["a", "b"], np.eye(2, 8, dtype=np.float32))
    index.save(tmp_path / "ann")
    data = (tmp_path / "ann" / "vectors.faiss").read_bytes()
    (tmp_path / "ann" / "vectors.faiss").write_bytes(data[:-10])
    with pytest.raises(IndexLoadError, match="damaged"):
        load_ann(tmp_path / "ann")
    with pytest.raises(IndexLoadError, match="manifest.json is missing"):
        load_ann(tmp_path)


def test_milvus_folder_out_of_step_with_its_collection_is_refused(tmp_path: Path):
    vectors = np.eye(3, 8, dtype=np.float32)
    index = new_index("milvus", tmp_path, dim=8)
    index.index(["a", "b", "c"], vectors)
    index.save(tmp_path / "ann")
    index.delete(["c"])  # a change the folder never saw
    with pytest.raises(IndexLoadError, match="holds 2 vectors, the folder was saved with 3"):
        load_ann(tmp_path / "ann")
    new_index("milvus", tmp_path, dim=8).index(["x"], vectors[:1])  # another build into the same collection
    with pytest.raises(IndexLoadError, match="was rebuilt by another index"):
        load_ann(tmp_path / "ann")
    manifest = json.loads((tmp_path / "ann" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["uri_relative"] == "../milvus.db" and manifest["collection"] == "test_result"


def test_milvus_search_parameters_saved_and_overridable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    index = create_ann("milvus", 8, "m", uri=str(tmp_path / "milvus.db"), collection="ivf_result",
                       index_type="IVF_FLAT", index_params={"nlist": 2}, search_params={"nprobe": 1})
    index.index([f"d{i}" for i in range(20)], np.eye(20, 8, dtype=np.float32))
    index.save(tmp_path / "ann")
    assert load_ann(tmp_path / "ann").search_params == {"nprobe": 1}
    monkeypatch.setenv("TECHMATCH_MILVUS_SEARCH_PARAMS", '{"nprobe": 2}')
    loaded = load_ann(tmp_path / "ann")
    assert loaded.search_params == {"nprobe": 2} and loaded.index_type == "IVF_FLAT"
    assert loaded.search(np.eye(1, 8, dtype=np.float32), 1)[0][0][0] == "d0"


def test_milvus_lite_file_moves_with_the_index_folder(tmp_path: Path):
    index = new_index("milvus", tmp_path / "a", dim=8)
    index.index(["a", "b"], np.eye(2, 8, dtype=np.float32))
    index.save(tmp_path / "a" / "ann")
    release(index)
    (tmp_path / "a").rename(tmp_path / "b")
    moved = load_ann(tmp_path / "b" / "ann")
    assert moved.uri == str(tmp_path / "b" / "milvus.db") and sorted(moved.ids) == ["a", "b"]
    release(moved)
    import shutil

    shutil.rmtree(tmp_path / "b" / "milvus.db")
    with pytest.raises(IndexLoadError, match="Milvus Lite file .* is missing"):
        load_ann(tmp_path / "b" / "ann")


def test_milvus_lite_file_open_in_another_process_is_a_clear_error(tmp_path: Path):
    index = new_index("milvus", tmp_path, dim=8)
    index.index(["a"], np.eye(1, 8, dtype=np.float32))
    script = ("from recommender.ann.milvus_index import connect\nimport sys\n"
              "from recommender.ann.base import VectorDatabaseError\n"
              "try:\n    connect(sys.argv[1])\nexcept VectorDatabaseError as e:\n    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "milvus.db")], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert "Milvus Lite serves one process at a time" in proc.stdout and "milvus-lite server" in proc.stdout


def test_milvus_unreachable_server_and_temporary_file(tmp_path: Path):
    index = create_ann("milvus", 8, "m", uri="http://127.0.0.1:9", collection="c")
    with pytest.raises(VectorDatabaseError, match="cannot reach the Milvus server at http://127.0.0.1:9"):
        index.index(["a"], np.eye(1, 8, dtype=np.float32))
    temporary = create_ann("milvus", 8, "m", collection="c")  # no URI: a temporary Lite file (techmatch eval)
    temporary.index(["a"], np.eye(1, 8, dtype=np.float32))
    assert temporary.search(np.eye(1, 8, dtype=np.float32), 1)[0][0][0] == "a"
    with pytest.raises(UserError, match="TECHMATCH_MILVUS_URI"):
        temporary.save(tmp_path / "ann")


def test_milvus_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TECHMATCH_ANN_BACKEND", "milvus")
    monkeypatch.setenv("TECHMATCH_MILVUS_URI", "http://milvus.internal:19530")
    monkeypatch.setenv("TECHMATCH_MILVUS_INDEX_TYPE", "hnsw")
    monkeypatch.setenv("TECHMATCH_MILVUS_SEARCH_PARAMS", '{"ef": 256}')
    settings = PipelineSettings()
    options = settings.ann_options("result")
    assert options["uri"] == "http://milvus.internal:19530" and options["collection"] == "techmatch_result"
    assert options["index_type"] == "HNSW" and options["search_params"] == {"ef": 256}
    assert PipelineSettings(ann_backend="flat").ann_options("result") == {}
    for bad in ({"milvus_uri": "milvus.internal:19530"}, {"milvus_collection": "a-b"}, {"ann_backend": "annoy"},
                {"pgvector_table": "Robert'); DROP"}):
        with pytest.raises(ValueError):
            PipelineSettings(**bad)


def test_wrong_dimension_is_rejected(tmp_path: Path):
    for backend in BACKENDS:
        index = new_index(backend, tmp_path, dim=8)
        with pytest.raises(ValueError, match="dimension 8"):
            index.index(["a"], np.ones((1, 4), dtype=np.float32))


SHARED = """
import json, sys
import numpy as np
from recommender.ann import load_ann
index = load_ann(sys.argv[1], model="test-model")
query = np.array(json.loads(sys.argv[2]), dtype=np.float32)
seen = index.search(query, 1)[0][0][0]
index.delete([seen])
print(json.dumps({"seen": seen, "len": len(index)}))
"""


def test_two_processes_share_one_index_through_a_milvus_lite_server(tmp_path: Path, milvus_lite_server: str):
    """A write acknowledged by one process is seen by the next search of another, with no reload or replay."""
    rng = np.random.default_rng(3)
    vectors = unit(rng, 50)
    writer = create_ann("milvus", 16, "test-model", uri=milvus_lite_server, collection="shared_result")
    writer.index([f"d{i}" for i in range(50)], vectors)
    writer.save(tmp_path / "ann")
    writer.append(["new"], vectors[10:11] * -1)  # after the save: the other process must still see it
    query = -vectors[10:11]
    proc = subprocess.run([sys.executable, "-c", SHARED, str(tmp_path / "ann"), json.dumps(query.tolist())],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer == {"seen": "new", "len": 50}
    assert "new" not in writer and len(writer) == 50  # its delete, seen here at once
    assert writer.search(query, 1)[0][0][0] != "new"
