"""pgvector HNSW beside FAISS IVF at a larger size, on scale.py's kind of vectors: build time, recall@10, p50/p95.

    python -m eval.benchmarks.pgvector_scale --size 100000 --url postgresql+psycopg://postgres@127.0.0.1:5432/db \\
        --m 16 --ef-construction 128 --build-memory 2GB

The vectors are ``eval.benchmarks.scale``'s large part's: ``iter_results`` titles embedded with the 384-d LSA
embedder; the queries are generated need titles (tuning and measured samples disjoint, as there). FAISS IVF
(nlist scaled as sqrt(n) from scale.py's 1024 at 800,000) has its nprobe tuned as there. pgvector's table is
loaded (a binary COPY), then its HNSW index built by the service's ``create_indexes`` with the given m,
ef_construction and ``maintenance_work_mem``; the server's parallel build workers, its NOTICEs (pgvector says
when the graph outgrows the memory) and its peak memory are recorded. ``hnsw.ef_search`` is the smallest of a
sweep whose recall@10 *counting ties* reaches 0.96 on the tuning queries (ann-benchmarks' way: a returned id
counts if it is as near as the exact 10th, so one of several identical generated titles is as good as another);
the id-count recall is reported beside it, with the ef_search that id recall alone would need. Latency: one
query at a time, each query on both indexes in turn (same load). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from eval.benchmarks.scale import (
    SEED,
    TARGET_RECALL,
    peak_rss_mb,
    recall_at_k,
    recall_at_k_ties,
    set_nprobe,
    timed_side_by_side,
    tune_nprobe,
)
from eval.latency import percentiles

EF_SEARCHES = (40, 64, 100, 150, 200, 300, 400, 600, 800, 1000)  # 1,000: pgvector's limit
SERVER_SETTINGS = ("max_parallel_maintenance_workers", "max_parallel_workers", "max_worker_processes",
                   "shared_buffers", "server_version")


def _psycopg_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def copy_load(url: str, table: str, ids: list[str], vectors: np.ndarray) -> None:
    """Fill the (empty) table with one binary COPY of (id, embedding): pgvector's psycopg adapter writes each
    vector as binary, far faster than the service's 1,000-row INSERTs (``write_rows``) for a bulk load."""
    import psycopg
    from pgvector.psycopg import register_vector

    with psycopg.connect(_psycopg_url(url)) as conn:
        register_vector(conn)
        with conn.cursor() as cur, cur.copy(f'COPY "{table}" (id, embedding) FROM STDIN WITH (FORMAT BINARY)') as copy:
            copy.set_types(["text", "vector"])
            for doc_id, vector in zip(ids, vectors):
                copy.write_row((doc_id, vector))
        conn.commit()


class ServerWatch:
    """Samples, while a build runs, the server's memory (PSS of the postmaster and its children) and its
    parallel workers (pg_stat_activity), from a thread of its own."""

    def __init__(self, url: str, every_s: float = 2.0) -> None:
        import psycopg

        self.every_s, self.peak_pss_mb, self.max_parallel_workers, self.phases = every_s, 0.0, 0, []
        self._conn = psycopg.connect(_psycopg_url(url), autocommit=True)
        data = Path(self._conn.execute("SHOW data_directory").fetchone()[0])
        self._postmaster = int((data / "postmaster.pid").read_text().split()[0])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pss_mb(self) -> float:
        pids = [self._postmaster]
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                if f"PPid:\t{self._postmaster}\n" in status.read_text():
                    pids.append(int(status.parent.name))
            except OSError:
                continue
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak_pss_mb = max(self.peak_pss_mb, self._pss_mb())
            workers = self._conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'").fetchone()[0]
            self.max_parallel_workers = max(self.max_parallel_workers, int(workers))
            phase = self._conn.execute("SELECT phase FROM pg_stat_progress_create_index").fetchone()
            if phase and (not self.phases or self.phases[-1] != phase[0]):
                self.phases.append(phase[0])

    def __enter__(self) -> ServerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()


def sweep_ef(pg: Any, queries: np.ndarray, truth: list, target: float) -> tuple[int, int | None, list[dict]]:
    """Every ef_search of the sweep on the tuning queries: (smallest reaching the target counting ties,
    smallest reaching it by ids or None, the sweep)."""
    sweep, by_ties, by_ids = [], None, None
    for ef in EF_SEARCHES:
        pg.ef_search = ef
        start = time.perf_counter()
        approx = [pg.search(q[None, :], 10)[0] for q in queries]
        ms = (time.perf_counter() - start) * 1000 / len(queries)
        row = {"ef_search": ef, "recall@10": round(recall_at_k(approx, truth), 4),
               "recall@10_ties": round(recall_at_k_ties(approx, truth), 4), "ms_per_query": round(ms, 2)}
        sweep.append(row)
        if by_ties is None and row["recall@10_ties"] >= target:
            by_ties = ef
        if by_ids is None and row["recall@10"] >= target:
            by_ids = ef
            break
    return (by_ties if by_ties is not None else EF_SEARCHES[-1]), by_ids, sweep


def measure_at(pg: Any, ef: int, queries: np.ndarray, truth: list) -> dict:
    """Recall@10 (by id and counting ties) and p50/p95 of pgvector alone on the measured queries at one ef_search."""
    pg.ef_search = ef
    hits = [pg.search(q[None, :], 10)[0] for q in queries]
    alone = timed_side_by_side({"pgvector": pg}, queries)["pgvector"]
    return {"ef_search": ef, "recall@10": round(recall_at_k(hits, truth), 4),
            "recall@10_ties": round(recall_at_k_ties(hits, truth), 4),
            **{k: round(v, 2) for k, v in percentiles(alone).items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--url", required=True, help="a PostgreSQL database with pgvector (a table is created)")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--tune-queries", type=int, default=200)
    ap.add_argument("--table", default="bench_scale")
    ap.add_argument("--m", type=int, default=16, help="HNSW links per node")
    ap.add_argument("--ef-construction", type=int, default=64, help="HNSW build breadth")
    ap.add_argument("--build-memory", default="2GB", help="maintenance_work_mem of the HNSW build")
    ap.add_argument("--parallel-workers", type=int, default=None,
                    help="max_parallel_maintenance_workers of the build (default: the server's)")
    ap.add_argument("--insert", action="store_true", help="load with the service's write_rows, not a binary COPY")
    ap.add_argument("--measure-ef", default="",
                    help="comma-separated ef_search values also measured on the measured queries (recall, p50/p95)")
    args = ap.parse_args(argv)
    try:
        measure_efs = [int(value) for value in args.measure_ef.split(",") if value.strip()]
    except ValueError:
        ap.error(f"--measure-ef takes whole numbers separated by commas, not {args.measure_ef!r}")
    if any(not 1 <= ef <= EF_SEARCHES[-1] for ef in measure_efs):
        ap.error(f"--measure-ef values must be between 1 and {EF_SEARCHES[-1]} (pgvector's limit)")

    from sqlalchemy import text

    from data.synthetic import generate_world, iter_results
    from eval.benchmarks.lsa import LsaEmbedder
    from recommender.ann import create_ann
    from recommender.ann.pgvector_index import PgVectorIndex, release

    started = time.perf_counter()
    n = args.size
    titles = [record["title"] for record in iter_results(SEED, n)]
    distinct_titles = len(set(titles))
    ids = [f"r{i}" for i in range(n)]
    need_titles = list(dict.fromkeys(need["title"] for need in generate_world(seed=SEED, n_results=1000).needs))
    random.Random(SEED).shuffle(need_titles)
    measured = need_titles[:args.queries]
    tuning = need_titles[args.queries:args.queries + args.tune_queries]
    embedder = LsaEmbedder()
    embedder.fit(random.Random(SEED).sample(titles, min(50_000, n)))
    vectors = np.asarray(embedder.embed_passages(titles), dtype=np.float32)
    del titles
    q_measured, q_tuning = embedder.embed_queries(measured), embedder.embed_queries(tuning)
    embed_s = time.perf_counter() - started

    exact = create_ann("flat", embedder.dim, embedder.name)
    exact.index(ids, vectors)
    nlist = max(16, round(1024 * math.sqrt(n / 800_000)))
    start = time.perf_counter()
    ivf = create_ann("ivf", embedder.dim, embedder.name, nlist=nlist)
    ivf.index(ids, vectors)
    ivf_build_s = time.perf_counter() - start
    nprobe, _ = tune_nprobe(ivf, exact, q_tuning, TARGET_RECALL + 0.01)
    set_nprobe(ivf, nprobe)

    pg = PgVectorIndex(embedder.dim, embedder.name, url=args.url, table=args.table, m=args.m,
                       ef_construction=args.ef_construction, build_memory=args.build_memory)
    start = time.perf_counter()
    with pg.engine.begin() as conn:
        pg.drop_graph(conn)
        conn.execute(text(f'TRUNCATE "{args.table}"'))
        if args.insert:
            pg.write_rows(conn, ids, vectors)
    if not args.insert:
        copy_load(args.url, args.table, ids, vectors)
    with pg.engine.begin() as conn:
        conn.execute(text(f'ANALYZE "{args.table}"'))
    load_s = time.perf_counter() - start
    del vectors

    notices: list[str] = []
    start = time.perf_counter()
    with ServerWatch(args.url) as watch, pg.engine.begin() as conn:
        raw = conn.connection.driver_connection
        raw.add_notice_handler(lambda diag: None if "already exists" in (diag.message_primary or "")
                               else notices.append(f"{diag.severity}: {diag.message_primary}"))
        if args.parallel_workers is not None:
            conn.execute(text(f"SET LOCAL max_parallel_maintenance_workers = {int(args.parallel_workers)}"))
        server = {name: conn.execute(text(f"SHOW {name}")).scalar() for name in SERVER_SETTINGS}
        pg.create_indexes(conn)
        server["maintenance_work_mem"] = conn.execute(text("SHOW maintenance_work_mem")).scalar()
    hnsw_s = time.perf_counter() - start
    with pg.engine.connect() as conn:
        index_mb = conn.execute(text("SELECT pg_relation_size(:i)"), {"i": f"{args.table}_hnsw"}).scalar() / 2**20
        table_mb = conn.execute(text("SELECT pg_table_size(:t)"), {"t": args.table}).scalar() / 2**20

    target = TARGET_RECALL + 0.01
    ef_ties, ef_ids, sweep = sweep_ef(pg, q_tuning, exact.search(q_tuning, 10), target)
    truth = exact.search(q_measured, 10)
    pg.ef_search = ef_ties
    found = {"faiss_ivf": ivf.search(q_measured, 10), "pgvector": [pg.search(q[None, :], 10)[0] for q in q_measured]}
    latencies = timed_side_by_side({"faiss_ivf": ivf, "pgvector": pg}, q_measured)
    by_ids = None
    if ef_ids is not None and ef_ids != ef_ties:  # the figures at the ef_search that the id count needs, too
        by_ids = measure_at(pg, ef_ids, q_measured, truth)
    measured_at = [measure_at(pg, ef, q_measured, truth) for ef in measure_efs]
    pg.ef_search = ef_ties
    release(args.url)
    out = {
        "vectors": n, "distinct_titles": distinct_titles, "dim": embedder.dim, "embedder": embedder.name,
        "queries": len(measured), "tuning_queries": len(tuning), "target_tuning": target,
        "embed_s": round(embed_s, 1),
        "faiss_ivf": {"nlist": nlist, "nprobe": nprobe, "build_s": round(ivf_build_s, 1)},
        "pgvector": {"m": pg.m, "ef_construction": pg.ef_construction, "ef_search": ef_ties,
                     "ef_search_by_ids": ef_ids, "build_memory": pg.build_memory,
                     "load": "write_rows" if args.insert else "binary COPY",
                     "load_s": round(load_s, 1), "hnsw_build_s": round(hnsw_s, 1), "ef_sweep": sweep,
                     "server": server, "parallel_workers_seen": watch.max_parallel_workers,
                     "build_phases": watch.phases, "notices": notices,
                     "server_peak_pss_mb": round(watch.peak_pss_mb, 0),
                     "index_mb": round(index_mb, 0), "table_mb": round(table_mb, 0), "at_ef_search_by_ids": by_ids,
                     "measured_at_ef_search": measured_at},
        "peak_rss_mb": round(peak_rss_mb(), 0),
        "total_s": round(time.perf_counter() - started, 1),
    }
    for name, hits in found.items():
        out[name].update({"recall@10": round(recall_at_k(hits, truth), 4),
                          "recall@10_ties": round(recall_at_k_ties(hits, truth), 4),
                          **{k: round(v, 2) for k, v in percentiles(latencies[name]).items()}})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
