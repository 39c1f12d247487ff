"""The pgvector backend on a real PostgreSQL 16 + pgvector (the test server of ``scripts/postgres.sh``): the
ANN contract with SQL filters and HNSW recall, the service's choice of backend, one clear line when the
extension is missing, and the startup repair of vectors the records' writers did not store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ServiceHarness, fixture_rows, fresh_pg_database
from pydantic import ValidationError
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from recommender.ann import create_ann, load_ann
from recommender.ann.pgvector_index import PgVectorIndex
from recommender.filters import ResultFilters
from recommender.records import parse_record
from recommender.settings import PipelineSettings
from service.core.catalog import store_rows
from service.core.vectors import MissingExtensionError, choose_backend

pytestmark = pytest.mark.postgres


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_table_contract_sql_filters_and_hnsw_recall(tmp_path: Path):
    url = fresh_pg_database()
    rng = np.random.default_rng(5)
    n, dim = 3000, 32
    vectors, ids = unit(rng, n, dim), [f"d{i}" for i in range(n)]
    fields = ["储能", "新材料", "it's", None]
    meta = [{"field": fields[i % 4], "institution": f"大学{i % 3}", "ip_status": None, "trl": (i % 9) + 1}
            for i in range(n)]
    index = PgVectorIndex(dim, "test-model", url, "t_result", m=16, ef_construction=64, ef_search=40)
    index.index(ids, vectors, meta)
    queries = unit(rng, 50, dim)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    found = index.search(queries, 10)
    recall = np.mean([len({ids[j] for j in exact[q]} & {d for d, _ in found[q]}) / 10 for q in range(50)])
    assert recall >= 0.95, recall  # HNSW (m 16, ef_search raised to at least k)
    assert found[0][0][1] == pytest.approx(float(queries[0] @ vectors[exact[0][0]]), abs=1e-5)  # a cosine

    wanted = ResultFilters(field="it's", trl_min=3, trl_max=5)  # exact among the accepted rows, quotes and all
    ok = np.array([m["field"] == "it's" and 3 <= m["trl"] <= 5 for m in meta])
    scores = np.where(ok, queries[:5] @ vectors.T, -np.inf)
    hits = index.search(queries[:5], 20, wanted)
    for q in range(5):
        assert [d for d, _ in hits[q]] == [ids[j] for j in np.argsort(-scores[q])[:20]]

    index.append(["d1", "new"], unit(rng, 2, dim), [{"field": "储能", "trl": 9}, {}])
    assert index.delete(["d2", "absent"]) == 1
    assert len(index) == n and index.present(["d2", "new", "d1"]) == ["new", "d1"]
    index.save(tmp_path / "ann")
    again = load_ann(tmp_path / "ann", "test-model", {"url": url, "table": "t_result"})
    assert again.search(queries[:3], 5) == index.search(queries[:3], 5)
    np.testing.assert_allclose(again.vectors(["new"]), index.vectors(["new"]))
    with pytest.raises(ValueError, match="dimension"):
        index.append(["x"], np.ones((1, 8), dtype=np.float32))
    other = PgVectorIndex(dim, "another-model", url, "t_result")  # another model's vectors are no use: emptied
    assert len(other) == 0


def test_the_hnsw_build_memory_is_a_setting_that_create_indexes_uses(tmp_path: Path, monkeypatch):
    url = fresh_pg_database()
    monkeypatch.setenv("TECHMATCH_PGVECTOR_BUILD_MEMORY", "96MB")
    settings = PipelineSettings(ann_backend="pgvector", pgvector_url=url)
    assert PipelineSettings.model_fields["pgvector_build_memory"].default == "1GB"
    index = create_ann("pgvector", 8, "test-model", **settings.ann_options("result"))
    with index.engine.begin() as conn:
        index.create_indexes(conn)  # SET LOCAL: still in force in this transaction, gone after it
        assert conn.execute(text("SHOW maintenance_work_mem")).scalar() == "96MB"
    index.save(tmp_path / "ann")
    assert load_ann(tmp_path / "ann", "test-model", settings.ann_options("result")).build_memory == "96MB"
    for bad in ("1 GB", "2TB", "1GB'; DROP TABLE x; --"):
        with pytest.raises(ValidationError, match="pgvector_build_memory"):
            PipelineSettings(pgvector_build_memory=bad)
        with pytest.raises(ValueError, match="PostgreSQL size"):
            PgVectorIndex(8, "test-model", url, "t_result", build_memory=bad)


def _plain_role_database(server_database_url: str) -> str:
    """A database owned by a role that may not create extensions (pgvector is not a trusted extension)."""
    admin = create_engine(server_database_url, isolation_level="AUTOCOMMIT")
    name = make_url(server_database_url).database
    with admin.connect() as conn:
        conn.execute(text("DO $$ BEGIN CREATE ROLE tm_plain LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"))
        conn.execute(text(f'CREATE DATABASE "{name}_plain" OWNER tm_plain'))
    admin.dispose()
    return make_url(server_database_url).set(username="tm_plain", database=f"{name}_plain").render_as_string(False)


def test_backend_chosen_by_itself_and_a_missing_extension_is_one_line(tmp_path: Path):
    url = fresh_pg_database()
    chosen = choose_backend(PipelineSettings(), create_engine(url))
    assert (chosen.ann_backend, chosen.pgvector_managed) == ("pgvector", True)
    assert choose_backend(PipelineSettings(ann_backend="flat"), create_engine(url)).ann_backend == "flat"
    plain = _plain_role_database(url)
    assert choose_backend(PipelineSettings(), create_engine(plain)).ann_backend == "flat"  # FAISS, as before
    with pytest.raises(MissingExtensionError, match="CREATE EXTENSION vector"):
        choose_backend(PipelineSettings(ann_backend="pgvector"), create_engine(plain))
    env = {**os.environ, "TECHMATCH_ANN_BACKEND": "pgvector"}
    done = subprocess.run([sys.executable, "-m", "techmatch", "serve", "--db", plain, "--home", str(tmp_path),
                           "--log-level", "warning"],
                          capture_output=True, text=True, timeout=120, env=env)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "no pgvector extension" in lines[0] and "apt-get install postgresql-16-pgvector" in lines[0]
    assert "CREATE EXTENSION vector" in lines[0]


def test_startup_repairs_vectors_written_without_their_records_transaction(tmp_path: Path):
    """Rows stored by a command that embeds nothing (load-demo, db migrate) get their vectors at the next start;
    a vector whose record changed is re-embedded, one whose record is gone is removed."""
    url = fresh_pg_database()
    harness = ServiceHarness(url, tmp_path / "home", "pgvector")
    with harness.running(), harness.services.sessions() as session:
        records = [parse_record(raw, "result", "t", "r")[0] for raw in fixture_rows("result")]
        store_rows(session, "result", records)  # the database only: no vectors yet
    engine = create_engine(url)
    with engine.begin() as conn:
        assert conn.scalar(text("SELECT count(*) FROM tm_vectors_result")) == 0
    with harness.running() as client:
        assert harness.services.sync.vectors is not None
        harness.index_agrees_with_db()
        broker = harness.key()
        top = client.post("/match", json={"text": "高镍三元正极材料包覆改性", "k": 2}, headers=broker).json()
        assert top["matches"][0]["id"] == "R1" and top["matches"][0]["signals"]["dense"]["rank"] == 1
    with engine.begin() as conn:  # damage: a stale hash, a vector of nothing
        conn.execute(text("UPDATE tm_vectors_result SET source_hash = 'old' WHERE id = 'R2'"))
        conn.execute(text("INSERT INTO tm_vectors_result (id, embedding, source_hash) "
                          "SELECT 'ghost', embedding, 'x' FROM tm_vectors_result WHERE id = 'R1'"))
    with harness.running():
        harness.index_agrees_with_db()
        with engine.begin() as conn:
            assert conn.scalar(text("SELECT count(*) FROM tm_vectors_result WHERE source_hash = 'old'")) == 0
