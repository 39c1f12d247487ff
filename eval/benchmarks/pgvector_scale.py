"""pgvector HNSW beside FAISS IVF at a larger size, on scale.py's kind of vectors: build time, recall@10, p50/p95.

    python -m eval.benchmarks.pgvector_scale --size 100000 --url postgresql+psycopg://postgres@127.0.0.1:5432/db

The vectors are ``eval.benchmarks.scale``'s large part's: ``iter_results`` titles embedded with the 384-d LSA
embedder; the queries are generated need titles (tuning and measured samples disjoint, as there). FAISS IVF
(nlist scaled as sqrt(n) from scale.py's 1024 at 800,000) has its nprobe tuned as there; pgvector's table is
loaded, then its HNSW index built (m 16, ef_construction 64, the service's ``create_indexes``), and
``hnsw.ef_search`` is the smallest of a sweep reaching recall@10 0.96 on the tuning queries. Latency: one query
at a time, each query on both indexes in turn (same load). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time

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

EF_SEARCHES = (40, 64, 100, 150, 200, 300, 400)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--url", required=True, help="a PostgreSQL database with pgvector (a table is created)")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--tune-queries", type=int, default=200)
    ap.add_argument("--table", default="bench_scale")
    args = ap.parse_args(argv)

    from sqlalchemy import text

    from data.synthetic import generate_world, iter_results
    from eval.benchmarks.lsa import LsaEmbedder
    from recommender.ann import create_ann
    from recommender.ann.pgvector_index import PgVectorIndex, release

    n = args.size
    titles = [record["title"] for record in iter_results(SEED, n)]
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

    exact = create_ann("flat", embedder.dim, embedder.name)
    exact.index(ids, vectors)
    nlist = max(16, round(1024 * math.sqrt(n / 800_000)))
    start = time.perf_counter()
    ivf = create_ann("ivf", embedder.dim, embedder.name, nlist=nlist)
    ivf.index(ids, vectors)
    ivf_build_s = time.perf_counter() - start
    nprobe, _ = tune_nprobe(ivf, exact, q_tuning, TARGET_RECALL + 0.01)
    set_nprobe(ivf, nprobe)

    pg = PgVectorIndex(embedder.dim, embedder.name, url=args.url, table=args.table)
    start = time.perf_counter()
    with pg.engine.begin() as conn:
        pg.drop_graph(conn)
        conn.execute(text(f'TRUNCATE "{args.table}"'))
        pg.write_rows(conn, ids, vectors)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    with pg.engine.begin() as conn:
        pg.create_indexes(conn)
    hnsw_s = time.perf_counter() - start
    del vectors

    truth_tune = exact.search(q_tuning, 10)
    sweep = []
    for ef in EF_SEARCHES:
        pg.ef_search = ef
        approx = [pg.search(q[None, :], 10)[0] for q in q_tuning]
        sweep.append({"ef_search": ef, "recall@10": round(recall_at_k(approx, truth_tune), 4)})
        if sweep[-1]["recall@10"] >= TARGET_RECALL + 0.01:
            break
    truth = exact.search(q_measured, 10)
    found = {"faiss_ivf": ivf.search(q_measured, 10), "pgvector": [pg.search(q[None, :], 10)[0] for q in q_measured]}
    latencies = timed_side_by_side({"faiss_ivf": ivf, "pgvector": pg}, q_measured)
    release(args.url)
    out = {
        "vectors": n, "dim": embedder.dim, "embedder": embedder.name, "queries": len(measured),
        "tuning_queries": len(tuning),
        "faiss_ivf": {"nlist": nlist, "nprobe": nprobe, "build_s": round(ivf_build_s, 1)},
        "pgvector": {"m": pg.m, "ef_construction": pg.ef_construction, "ef_search": pg.ef_search,
                     "load_s": round(load_s, 1), "hnsw_build_s": round(hnsw_s, 1), "ef_sweep": sweep},
        "peak_rss_mb": round(peak_rss_mb(), 0),
    }
    for name, hits in found.items():
        out[name].update({"recall@10": round(recall_at_k(hits, truth), 4),
                          "recall@10_ties": round(recall_at_k_ties(hits, truth), 4),
                          **{k: round(v, 2) for k, v in percentiles(latencies[name]).items()}})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
