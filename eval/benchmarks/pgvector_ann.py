"""pgvector (HNSW) against FAISS on the same vectors and queries: recall@10 against exact search, query p50/p95.

    python -m eval.benchmarks.pgvector_ann --index var/full/index --needs /tmp/world11/needs.jsonl \
        --url postgresql+psycopg://postgres@127.0.0.1:5432/db [--queries 300]

The vectors are a saved index's own (the demo world's e5 passage vectors); the queries are need titles of
another demo world, encoded with the same model's query role. Exact search is numpy over every vector.
FAISS (the index's flat backend) and pgvector (a table of its own, HNSW m 16, ef_construction 64; searched at
the depth the hybrid asks, 200, and at 10) answer one query at a time, alternately, so both see the same load.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from eval.latency import percentiles
from recommender.ann.pgvector_index import PgVectorIndex, release
from recommender.engine import Engine
from recommender.signal import Texts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True, help="a saved index folder with a dense signal (FAISS)")
    ap.add_argument("--needs", type=Path, required=True, help="JSON Lines needs whose titles are the queries")
    ap.add_argument("--url", required=True, help="a PostgreSQL database with pgvector (a table is created)")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--table", default="bench_vectors")
    args = ap.parse_args(argv)
    dense = Engine.load(args.index).matcher.results.signals["dense"]
    faiss_ann = dense.ann
    ids = list(faiss_ann.ids)
    vectors = np.asarray(faiss_ann.vectors(ids), dtype=np.float32)
    titles = [json.loads(line)["title"] for line in args.needs.open(encoding="utf-8")][:args.queries]
    queries = dense.embed_queries([Texts(t) for t in titles]).astype(np.float32)
    exact = [[ids[i] for i in np.argsort(-(vectors @ q), kind="stable")[:10]] for q in queries]

    pg = PgVectorIndex(vectors.shape[1], dense.embedder.name, url=args.url, table=args.table)
    start = time.perf_counter()
    pg.index(ids, vectors)
    build = time.perf_counter() - start
    out: dict = {"vectors": len(ids), "dim": int(vectors.shape[1]), "queries": len(queries),
                 "hnsw": {"m": pg.m, "ef_construction": pg.ef_construction}, "pgvector_build_s": round(build, 1)}
    for depth in (10, 200):
        found: dict[str, list] = {"faiss": [], "pgvector": []}
        times: dict[str, list[float]] = {"faiss": [], "pgvector": []}
        pg.ef_search = max(100, depth)
        for q in queries:
            for name, ann in (("faiss", faiss_ann), ("pgvector", pg)):
                a = time.perf_counter()
                hits = ann.search(q[None, :], depth)[0]
                times[name].append(time.perf_counter() - a)
                found[name].append([d for d, _ in hits[:10]])
        for name in found:
            recall = float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found[name], exact)]))
            ef = pg.ef_search if name == "pgvector" else None
            out[f"{name}_depth{depth}"] = {"recall@10": round(recall, 4), "ef_search": ef,
                                           **{k: round(v, 2) for k, v in percentiles(times[name]).items()}}
    release(args.url)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
