"""Scale benchmark on the synthetic world: the default hybrid at 30,000 results, approximate search at 800,000.

    python -m eval.benchmarks.scale [--small 30000] [--large 800000] [--out eval/benchmarks/SCALE.md]

* small: the shipped pipeline (dense e5-small + bm25 + char, exact FAISS) over ``generate_world`` results.
  Embedding the titles is timed on its own (through the persistent embedding cache: cold the first time,
  say so when warm), then the index build (which then reads the cache), then one-need-at-a-time latency
  with ``eval.runner.rank_all`` on generated need texts.
* large: ``iter_results`` streamed to 800k titles, embedded with an LSA embedder (``eval.benchmarks.lsa``:
  real text vectors, fast; timed separately and excluded from ANN figures); exact (flat) and IVF indexes
  from ``recommender.ann.create_ann``; nprobe tuned on one sample of generated need titles, recall@10
  against exact search and latency measured on another, disjoint sample. With ``--milvus IVF_FLAT`` (or
  ``HNSW``) the same vectors also go into Milvus (``--milvus-uri``: a Milvus Lite file by default, or a
  server), its search parameter tuned on the tuning sample, recall@10 measured on the measured sample, and
  its latency measured query by query alternating with FAISS IVF's, so both see the same machine load.

Each part runs in its own subprocess (``--part small|large``) so its peak memory is its own; figures go to
``WORK/scale_<part>.json`` and the table to SCALE.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from tqdm.auto import tqdm

from eval.benchmarks.run_all import REPO, machine
from eval.latency import percentiles

SEED = 7
TARGET_RECALL = 0.95
TARGET_LATENCY_MS = 20.0
NPROBES = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128)
# Milvus's search parameter per index type, and the values tried (smallest first) on the tuning queries
MILVUS_SWEEPS = {"IVF_FLAT": ("nprobe", (1, 2, 4, 8, 16, 32, 64, 128)), "HNSW": ("ef", (16, 32, 64, 128, 256, 512))}


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# -- approximate vs exact ------------------------------------------------------------------------------------
def recall_at_k(approx: Sequence[Sequence[tuple[str, float]]], exact: Sequence[Sequence[tuple[str, float]]],
                k: int = 10) -> float:
    """Mean share of the exact top-k ids that the approximate search also returns in its top k."""
    if len(approx) != len(exact) or not exact:
        raise ValueError("need the same, non-zero number of approximate and exact result lists")
    shares = []
    for a, e in zip(approx, exact, strict=True):
        truth = {doc for doc, _ in e[:k]}
        if truth:
            shares.append(len(truth & {doc for doc, _ in a[:k]}) / len(truth))
    return float(np.mean(shares)) if shares else 0.0


def recall_at_k_ties(approx: Sequence[Sequence[tuple[str, float]]], exact: Sequence[Sequence[tuple[str, float]]],
                     k: int = 10, tolerance: float = 1e-5) -> float:
    """Recall@k that counts ties: a returned hit scoring at least the exact k-th score (within float noise between
    engines) is one of the k nearest, whichever of several equally near ids it is. The generated titles repeat,
    so many vectors are identical, and two exact searches can return different ids of the same score."""
    if len(approx) != len(exact) or not exact:
        raise ValueError("need the same, non-zero number of approximate and exact result lists")
    shares = []
    for a, e in zip(approx, exact, strict=True):
        if e:
            cutoff = e[min(k, len(e)) - 1][1] - tolerance
            shares.append(sum(score >= cutoff for _, score in a[:k]) / min(k, len(e)))
    return float(np.mean(shares)) if shares else 0.0


def set_nprobe(ann: Any, nprobe: int) -> None:
    """Change an IVF index's nprobe after building (FaissIndex keeps it only as a creation option)."""
    import faiss

    ivf = faiss.extract_index_ivf(ann._index)  # noqa: SLF001 - no public setter yet (asked for in the report)
    ivf.nprobe = min(nprobe, ivf.nlist)
    ann.nprobe = ivf.nprobe


def timed_single_queries(ann: Any, vectors: np.ndarray, k: int = 10) -> tuple[list, list[float]]:
    """Search one query at a time (as a service would) and keep each latency in seconds."""
    hits, latencies = [], []
    for row in vectors:
        start = time.perf_counter()
        hits.append(ann.search(row[None, :], k)[0])
        latencies.append(time.perf_counter() - start)
    return hits, latencies


def tune_nprobe(ann: Any, exact: Any, queries: np.ndarray, target: float, k: int = 10) -> tuple[int, list[dict]]:
    """Smallest nprobe whose recall@k on the tuning queries reaches the target (with the whole sweep)."""
    truth = exact.search(queries, k)
    sweep = []
    chosen = None
    for nprobe in NPROBES:
        set_nprobe(ann, nprobe)
        start = time.perf_counter()
        approx = ann.search(queries, k)
        per_query_ms = (time.perf_counter() - start) * 1000 / len(queries)
        recall = recall_at_k(approx, truth, k)
        sweep.append({"nprobe": ann.nprobe, "recall@10": round(recall, 4),
                      "recall@10_ties": round(recall_at_k_ties(approx, truth, k), 4),
                      "batch_ms_per_query": round(per_query_ms, 3)})
        if recall >= target:
            chosen = ann.nprobe
            break
    return (chosen if chosen is not None else NPROBES[-1]), sweep


def tune_milvus(ann: Any, truth: list, queries: np.ndarray, target: float, k: int = 10) -> tuple[int, list[dict]]:
    """Smallest search parameter (nprobe or ef) whose tie-counting recall@k on the tuning queries reaches the target.

    Ties, not the index, cap the id-set recall of Milvus against FAISS's exact search (see ``recall_at_k_ties``)."""
    name, values = MILVUS_SWEEPS[ann.index_type]
    sweep = []
    for value in values:
        ann.search_params = {name: value}
        start = time.perf_counter()
        approx = ann.search(queries, k)
        per_query_ms = (time.perf_counter() - start) * 1000 / len(queries)
        recall, ties = recall_at_k(approx, truth, k), recall_at_k_ties(approx, truth, k)
        sweep.append({name: value, "recall@10": round(recall, 4), "recall@10_ties": round(ties, 4),
                      "batch_ms_per_query": round(per_query_ms, 3)})
        if ties >= target:
            return value, sweep
    return values[-1], sweep


def wait_for_index_swap(ann: Any, queries: np.ndarray, sweep: tuple[str, tuple[int, ...]],
                        timeout_s: float = 30.0) -> None:
    """Milvus Lite answers the first searches after a flush by brute force, until it swaps the indexed segment in
    (describe_index already says "Finished" by then). Wait until the lowest search setting answers the same
    over three looks 0.5 s apart, so the sweep measures the index and not the brute-force moment (seen: recall
    1.0, then 0.39 a third of a second later)."""
    name, values = sweep
    ann.search_params = {name: values[0]}
    previous, unchanged = ann.search(queries, 10), 0
    deadline = time.monotonic() + timeout_s
    while unchanged < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
        current = ann.search(queries, 10)
        unchanged = unchanged + 1 if current == previous else 0
        previous = current


def timed_side_by_side(indexes: dict[str, Any], vectors: np.ndarray, k: int = 10) -> dict[str, list[float]]:
    """One query at a time, each query on every index in turn: latencies taken under the same load."""
    latencies: dict[str, list[float]] = {name: [] for name in indexes}
    for row in tqdm(vectors, desc="side-by-side latency", unit="query", mininterval=5):
        for name, ann in indexes.items():
            start = time.perf_counter()
            ann.search(row[None, :], k)
            latencies[name].append(time.perf_counter() - start)
    return latencies


def part_milvus(ids: list[str], vectors: np.ndarray, index_type: str, nlist: int, uri: Path | str,
                q_tuning: np.ndarray, truth_tuning: list, q_measured: np.ndarray, truth_measured: list,
                ivf: Any, latency_queries: int, name: str) -> dict[str, Any]:
    """The Milvus backend on the same vectors: build, tuned search parameter, recall@10, latency beside IVF's."""
    import shutil

    from recommender.ann import create_ann

    if not str(uri).startswith(("http://", "https://")):
        shutil.rmtree(uri, ignore_errors=True)
    params = {"nlist": nlist} if index_type == "IVF_FLAT" else {"M": 16, "efConstruction": 128}
    rss0 = rss_mb()
    start = time.perf_counter()
    ann = create_ann("milvus", vectors.shape[1], name, uri=str(uri), collection="scale", index_type=index_type,
                     index_params=params)
    ann.index(ids, vectors)
    build_s = time.perf_counter() - start
    rss_built = rss_mb()
    wait_for_index_swap(ann, q_tuning[:10], MILVUS_SWEEPS[index_type])
    value, sweep = tune_milvus(ann, truth_tuning, q_tuning, TARGET_RECALL + 0.01)
    param = MILVUS_SWEEPS[index_type][0]
    ann.search_params = {param: value}
    start = time.perf_counter()
    approx = ann.search(q_measured, 10)
    batch_ms = (time.perf_counter() - start) * 1000 / len(q_measured)
    recall = recall_at_k(approx, truth_measured, 10)
    recall_ties = recall_at_k_ties(approx, truth_measured, 10)
    side = timed_side_by_side({"faiss_ivf": ivf, "milvus": ann}, q_measured[:latency_queries])
    return {
        "index_type": index_type, "index_params": params, "search_param": param, "search_value": value,
        "sweep": sweep, "uri": "a Milvus Lite file" if not str(uri).startswith("http") else str(uri),
        "build_s": round(build_s, 1), "recall@10": round(recall, 4),
        "recall@10_ties": round(recall_ties, 4), "batch_ms_per_query": round(batch_ms, 2),
        "latency_queries": len(side["milvus"]), "latency_ms": percentiles(side["milvus"]),
        "faiss_ivf_latency_ms": percentiles(side["faiss_ivf"]), "rss_growth_mb": round(rss_built - rss0, 0),
    }


# -- parts ---------------------------------------------------------------------------------------------------
def part_small(n: int, n_queries: int, seed: int) -> dict[str, Any]:
    """The shipped hybrid pipeline at n results: embedding, index build, query latency, memory."""
    from data.synthetic import generate_world
    from embeddings.factory import create_embedder
    from eval.runner import rank_all
    from recommender.pipeline import new_index
    from recommender.records import parse_records
    from recommender.settings import PipelineSettings

    settings = PipelineSettings()
    start = time.perf_counter()
    world = generate_world(seed=seed, n_results=n)
    results, _ = parse_records(((f"row {i}", r, None) for i, r in enumerate(world.results, 1)), "result", "world")
    needs, _ = parse_records(((f"row {i}", r, None) for i, r in enumerate(world.needs, 1)), "need", "world")
    generate_s = time.perf_counter() - start
    rss_data = rss_mb()

    embedder = create_embedder(settings.model, settings.cache_dir if settings.use_cache else None,
                               settings.e5_runtime)
    texts = [r.as_passage().dense_text for r in results]
    start = time.perf_counter()
    embedder.embed_passages(texts, progress=True)
    embed_s = time.perf_counter() - start
    newly_embedded = getattr(embedder, "misses", len(texts))

    start = time.perf_counter()
    index = new_index("result", settings)
    index.build(results)
    build_s = time.perf_counter() - start
    rss_index = rss_mb()

    sample = random.Random(seed).sample(needs, min(n_queries, len(needs)))
    rank_all(index, sample[:5], progress=False)  # warm-up: first-call costs are not per-query latency
    _, latencies = rank_all(index, sample)
    return {
        "results": len(results), "queries": len(sample), "signals": ",".join(settings.signals),
        "model": settings.model, "ann": settings.ann_backend, "generate_s": round(generate_s, 1),
        "embedding_s": round(embed_s, 1), "embedded_texts": len(texts), "newly_embedded": newly_embedded,
        "embedding_texts_per_s": round(newly_embedded / embed_s, 1) if newly_embedded else None,
        "index_build_s": round(build_s, 1), "latency_ms": percentiles(latencies),
        "rss_after_data_mb": round(rss_data, 0), "rss_after_index_mb": round(rss_index, 0),
        "peak_rss_mb": round(peak_rss_mb(), 0),
    }


def part_large(n: int, n_queries: int, n_tune: int, nlist: int, fit_sample: int, seed: int,
               milvus: str | None = None, milvus_nlist: int = 128, milvus_uri: Path | str | None = None,
               milvus_latency_queries: int = 100) -> dict[str, Any]:
    """IVF vs exact FAISS at n LSA-embedded results: build time, tuned nprobe, recall@10, latency, memory (and
    the Milvus backend on the same vectors when ``milvus`` names its index type)."""
    import faiss

    from data.synthetic import generate_world, iter_results
    from eval.benchmarks.lsa import LsaEmbedder
    from recommender.ann import create_ann

    start = time.perf_counter()
    titles: list[str] = []
    for record in tqdm(iter_results(seed, n), total=n, desc="generating results", unit="result", mininterval=2):
        titles.append(record["title"])
    generate_s = time.perf_counter() - start
    ids = [f"r{i}" for i in range(n)]

    world = generate_world(seed=seed, n_results=1000)  # needs only; their titles are the queries
    need_titles = list(dict.fromkeys(need["title"] for need in world.needs))
    random.Random(seed).shuffle(need_titles)
    if len(need_titles) < n_queries + n_tune:
        raise ValueError(f"only {len(need_titles)} distinct need titles for {n_queries} + {n_tune} queries")
    measured, tuning = need_titles[:n_queries], need_titles[n_queries:n_queries + n_tune]

    embedder = LsaEmbedder()
    start = time.perf_counter()
    embedder.fit(random.Random(seed).sample(titles, min(fit_sample, n)))
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    vectors = embedder.embed_passages(titles, progress=True)
    embed_s = time.perf_counter() - start
    del titles
    q_measured = embedder.embed_queries(measured)
    q_tuning = embedder.embed_queries(tuning)

    rss0 = rss_mb()
    start = time.perf_counter()
    exact = create_ann("flat", embedder.dim, embedder.name)
    exact.index(ids, vectors)
    flat_build_s = time.perf_counter() - start
    rss_flat = rss_mb()

    start = time.perf_counter()
    ivf = create_ann("ivf", embedder.dim, embedder.name, nlist=nlist)
    ivf.index(ids, vectors)
    ivf_build_s = time.perf_counter() - start
    rss_ivf = rss_mb()
    if not milvus:
        del vectors

    nprobe, sweep = tune_nprobe(ivf, exact, q_tuning, TARGET_RECALL + 0.01)
    set_nprobe(ivf, nprobe)

    _, exact_lat = timed_single_queries(exact, q_measured[:100])  # exact latency: 100 queries are plenty
    truth_all = exact.search(q_measured, 10)
    approx, ivf_lat = timed_single_queries(ivf, q_measured)
    recall = recall_at_k(approx, truth_all, 10)
    recall_ties = recall_at_k_ties(approx, truth_all, 10)
    eleven = exact.search(q_measured, 11)  # queries whose 10th and 11th nearest are equally near: ids are a toss-up
    tied = float(np.mean([len(e) > 10 and e[9][1] - e[10][1] < 1e-5 for e in eleven]))
    milvus_figures = None
    if milvus:
        milvus_figures = part_milvus(
            ids, vectors, milvus, milvus_nlist, milvus_uri or REPO / "var" / "benchmarks" / "scale_milvus.db",
            q_tuning, exact.search(q_tuning, 10), q_measured, truth_all, ivf, milvus_latency_queries, embedder.name,
        )
    return {
        "milvus": milvus_figures,
        "results": n, "queries": len(measured), "tuning_queries": len(tuning), "embedder": embedder.name,
        "dim": embedder.dim, "generate_s": round(generate_s, 1), "lsa_fit_s": round(fit_s, 1),
        "lsa_fit_sample": min(fit_sample, n), "embedding_s": round(embed_s, 1),
        "embedding_texts_per_s": round(n / embed_s, 0), "flat_build_s": round(flat_build_s, 1),
        "ivf_build_s": round(ivf_build_s, 1), "nlist": ivf.nlist, "nprobe": nprobe, "nprobe_sweep": sweep,
        "recall@10": round(recall, 4), "recall@10_ties": round(recall_ties, 4),
        "queries_tied_at_10": round(tied, 4), "ivf_latency_ms": percentiles(ivf_lat),
        "flat_latency_ms": percentiles(exact_lat), "flat_latency_queries": len(exact_lat),
        "rss_before_indexes_mb": round(rss0, 0), "rss_flat_mb": round(rss_flat - rss0, 0),
        "rss_ivf_mb": round(rss_ivf - rss_flat, 0), "peak_rss_mb": round(peak_rss_mb(), 0),
        "faiss_threads": faiss.omp_get_max_threads(),
    }


# -- report --------------------------------------------------------------------------------------------------
def _lat(p: dict[str, float]) -> str:
    return f"{p['p50']:.1f} / {p['p95']:.1f} / {p['p99']:.1f}"


def milvus_report(m: dict, large: dict) -> list[str]:
    param = m["search_param"]
    ok = m["recall@10_ties"] >= TARGET_RECALL
    return [
        f"## {large['results']:,} results: the Milvus backend ({m['uri']}, {m['index_type']}) beside FAISS IVF",
        "",
        f"The same vectors in Milvus through `recommender.ann` (`create_ann(\"milvus\", ...)`, index "
        f"{m['index_type']} {json.dumps(m['index_params'])}, per Milvus Lite segment of up to 100,000 rows); {param} "
        f"tuned on the same {large['tuning_queries']} tuning queries (smallest with recall@10 counting ties >= "
        f"{TARGET_RECALL + 0.01:.2f}), recall@10 on the "
        f"{large['queries']:,} measured queries; latency one query at a time on the first {m['latency_queries']} "
        "measured queries, each query on FAISS IVF then on Milvus, so both ran under the same load.",
        "",
        "| figure | Milvus | FAISS IVF |",
        "|---|---|---|",
        f"| build (insert, flush, index) | {m['build_s']:.0f} s | {large['ivf_build_s']:.0f} s |",
        f"| tuned search parameter | {param} {m['search_value']} | nprobe {large['nprobe']} |",
        f"| recall@10 vs exact ({large['queries']:,} queries): the same ids | {m['recall@10']:.4f} "
        f"| {large['recall@10']:.4f} |",
        f"| recall@10 counting ties (an id as near as the exact 10th counts) | {m['recall@10_ties']:.4f} "
        f"{'(met)' if ok else '(NOT met)'} | {large.get('recall@10_ties', float('nan')):.4f} |",
        f"| latency p50 / p95 / p99, top 10, side by side ({m['latency_queries']} queries) | "
        f"{_lat(m['latency_ms'])} ms | {_lat(m['faiss_ivf_latency_ms'])} ms |",
        f"| batched search ({large['queries']:,} queries in one call), ms/query | {m['batch_ms_per_query']:.2f} | |",
        f"| memory (RSS growth of this process) | {m['rss_growth_mb']:.0f} MB | {large['rss_ivf_mb']:.0f} MB |",
        "",
        f"{param} sweep on the tuning queries (batched search, ms per query):",
        "",
        f"| {param} | recall@10 (ids) | counting ties | ms/query |",
        "|---|---|---|---|",
        *(f"| {s[param]} | {s['recall@10']:.4f} | {s['recall@10_ties']:.4f} | {s['batch_ms_per_query']:.2f} |"
          for s in m["sweep"]),
        "",
    ]


def write_report(
    path: Path, small: dict | None, large: dict | None, info: dict, commands: Sequence[str], started: str
) -> None:
    lines = [
        "# Scale: index build, query latency and memory on the synthetic world",
        "",
        f"Measured {started} on {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, Python "
        f"{info['python']} (load average at start {info['load_avg']}). **Other engineers' jobs were running on the "
        "same 2 cores**: timings are indicative upper bounds; rerun the command on a quiet machine for clean ones.",
        "",
        "Command (from the repository root):",
        "",
        *(f"    {c}" for c in dict.fromkeys(commands)),
        "",
    ]
    if small:
        cold = small["newly_embedded"] == small["embedded_texts"]
        rate = f"{small['embedding_texts_per_s']:.1f} titles/s" if small["newly_embedded"] else "all cached"
        emb = (f"{small['embedding_s']:.0f} s (cold: {rate})" if cold else
               f"{small['embedding_s']:.0f} s ({small['newly_embedded']:,} of {small['embedded_texts']:,} titles were "
               f"not in the embedding cache and were embedded, {rate}; the rest came from the cache)")
        lines += [
            f"## {small['results']:,} results: the default pipeline ({small['signals']}, {small['model']}, "
            f"{small['ann']} FAISS)",
            "",
            "| figure | value |",
            "|---|---|",
            f"| generate world (results + needs) | {small['generate_s']:.1f} s |",
            f"| embed {small['embedded_texts']:,} result titles with {small['model']} | {emb} |",
            f"| build the hybrid index (embeddings read from the cache) | {small['index_build_s']:.1f} s |",
            f"| build incl. embedding | {small['embedding_s'] + small['index_build_s']:.0f} s |",
            f"| query latency p50 / p95 / p99 ({small['queries']} generated needs, one at a time, top 100, "
            f"query embedding included) | {_lat(small['latency_ms'])} ms |",
            f"| process RSS after data / after index / peak | {small['rss_after_data_mb']:.0f} / "
            f"{small['rss_after_index_mb']:.0f} / {small['peak_rss_mb']:.0f} MB |",
            "",
        ]
    if large:
        lat, ok_lat = large["ivf_latency_ms"], large["ivf_latency_ms"]["p99"] < TARGET_LATENCY_MS
        ok_recall = large["recall@10"] >= TARGET_RECALL
        lines += [
            f"## {large['results']:,} results: approximate (IVF) vs exact FAISS",
            "",
            f"Vectors: {large['embedder']} ({large['dim']}-d LSA: char 1-3-gram TF-IDF (100k n-grams) + truncated "
            f"SVD fitted on {large['lsa_fit_sample']:,} titles), real embeddings of the generated titles but not "
            f"e5-small (which would take hours on 2 cores). Queries: generated need titles, "
            f"{large['queries']:,} measured and {large['tuning_queries']} disjoint ones for tuning nprobe "
            f"(smallest nprobe with recall@10 >= "
            f"{TARGET_RECALL + 0.01:.2f} on the tuning sample). Embedding time is excluded from the ANN figures.",
            "",
            "| figure | value | target |",
            "|---|---|---|",
            f"| generate {large['results']:,} result titles (`iter_results`) | {large['generate_s']:.0f} s | |",
            f"| fit LSA / embed all titles | {large['lsa_fit_s']:.0f} s / {large['embedding_s']:.0f} s "
            f"({large['embedding_texts_per_s']:.0f} titles/s) | |",
            f"| build exact index (flat) | {large['flat_build_s']:.1f} s | |",
            f"| build IVF index (nlist {large['nlist']}, k-means training included) | {large['ivf_build_s']:.0f} s | |",
            f"| tuned nprobe | {large['nprobe']} | |",
            f"| IVF recall@10 vs exact ({large['queries']:,} queries) | {large['recall@10']:.4f} "
            f"| >= {TARGET_RECALL} {'(met)' if ok_recall else '(NOT met)'} |",
            *([f"| IVF recall@10 counting ties (a returned id as near as the exact 10th counts) | "
               f"{large['recall@10_ties']:.4f} | |",
               f"| measured queries whose exact 10th and 11th neighbours are equally near (ties) | "
               f"{large['queries_tied_at_10']:.1%} | |"] if "recall@10_ties" in large else []),
            f"| IVF latency p50 / p95 / p99, one query at a time, top 10 | {_lat(lat)} ms "
            f"| < {TARGET_LATENCY_MS:.0f} ms {'(met at p99)' if ok_lat else '(NOT met at p99)'} |",
            f"| exact (flat) latency p50 / p95 / p99 ({large['flat_latency_queries']} queries) "
            f"| {_lat(large['flat_latency_ms'])} ms | |",
            f"| memory: flat index / IVF index (RSS growth) | {large['rss_flat_mb']:.0f} / "
            f"{large['rss_ivf_mb']:.0f} MB | |",
            f"| process peak RSS | {large['peak_rss_mb']:.0f} MB | |",
            "",
            "nprobe sweep on the tuning queries (batched search, ms per query):",
            "",
            "| nprobe | recall@10 | ms/query |",
            "|---|---|---|",
            *(
                f"| {s['nprobe']} | {s['recall@10']:.4f} | {s['batch_ms_per_query']:.2f} |"
                for s in large["nprobe_sweep"]
            ),
            "",
            f"FAISS used {large['faiss_threads']} OpenMP threads. HNSW was not measured at this size: its build "
            "(M=32) takes far longer than IVF's k-means on 2 shared cores.",
            "",
        ]
        if large.get("milvus"):
            lines += milvus_report(large["milvus"], large)
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.benchmarks.scale", description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("small", "large", "both"), default="both")
    ap.add_argument("--small", type=int, default=30_000, help="results for the default pipeline")
    ap.add_argument("--large", type=int, default=800_000, help="results for the approximate index")
    ap.add_argument("--queries", type=int, default=1000, help="measured queries at the large size")
    ap.add_argument("--tune-queries", type=int, default=300, help="separate queries for tuning nprobe")
    ap.add_argument("--small-queries", type=int, default=200, help="measured needs at the small size")
    ap.add_argument("--nlist", type=int, default=1024, help="IVF lists at the large size")
    ap.add_argument("--fit-sample", type=int, default=50_000, help="titles the LSA model is fitted on")
    ap.add_argument("--milvus", choices=tuple(MILVUS_SWEEPS), default=None,
                    help="also measure the milvus backend at the large size, with this index type")
    ap.add_argument("--milvus-nlist", type=int, default=128, help="IVF_FLAT lists (per Milvus Lite segment)")
    ap.add_argument("--milvus-uri", default=None, help="Milvus Lite file or server URL (default WORK/scale_milvus.db)")
    ap.add_argument("--milvus-latency-queries", type=int, default=100, help="queries timed side by side")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--work", type=Path, default=REPO / "var" / "benchmarks")
    ap.add_argument("--out", type=Path, default=REPO / "eval" / "benchmarks" / "SCALE.md")
    ap.add_argument("--no-report", action="store_true", help="only write WORK/scale_<part>.json")
    ap.add_argument("--report-only", action="store_true", help="only rewrite SCALE.md from WORK/scale_*.json")
    args = ap.parse_args(argv)
    if min(args.small, args.large, args.queries, args.tune_queries, args.small_queries, args.nlist) < 1:
        ap.error("sizes must be positive")
    args.work.mkdir(parents=True, exist_ok=True)

    if args.report_only:
        parts = {p: args.work / f"scale_{p}.json" for p in ("small", "large")}
        loaded = {p: json.loads(f.read_text(encoding="utf-8")) for p, f in parts.items() if f.exists()}
        if not loaded:
            ap.error(f"nothing to report: no scale_small.json or scale_large.json in {args.work}")
        write_report(args.out, loaded.get("small"), loaded.get("large"), next(iter(loaded.values()))["machine"],
                     [part["command"] for part in loaded.values()],
                     "; ".join(f"{p} part {f['measured_at']}" for p, f in loaded.items()))
        print(f"wrote {args.out}")
        return 0

    if args.part == "both":  # each part in its own process: separate peak memory, one heavy job at a time
        started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        info = machine()
        passthrough = argv if argv is not None else sys.argv[1:]
        for part in ("small", "large"):
            proc = subprocess.run([sys.executable, "-m", "eval.benchmarks.scale", *passthrough, "--part", part,
                                   "--no-report"], cwd=REPO, env=dict(os.environ, PYTHONIOENCODING="utf-8"))
            if proc.returncode != 0:
                print(f"error: the {part} part failed (exit {proc.returncode})", file=sys.stderr)
                return proc.returncode
        small = json.loads((args.work / "scale_small.json").read_text(encoding="utf-8"))
        large = json.loads((args.work / "scale_large.json").read_text(encoding="utf-8"))
        command = "python -m eval.benchmarks.scale " + " ".join(passthrough)
        write_report(args.out, small, large, info, [command.strip()], started)
        print(f"wrote {args.out}")
        return 0

    if args.part == "small":
        figures = part_small(args.small, args.small_queries, args.seed)
    else:
        figures = part_large(args.large, args.queries, args.tune_queries, args.nlist, args.fit_sample, args.seed,
                             args.milvus, args.milvus_nlist, args.milvus_uri or args.work / "scale_milvus.db",
                             args.milvus_latency_queries)
    figures["measured_at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    figures["machine"] = machine()
    given = argv if argv is not None else sys.argv[1:]
    figures["command"] = ("python -m eval.benchmarks.scale " + " ".join(given)).strip()
    (args.work / f"scale_{args.part}.json").write_text(json.dumps(figures, indent=1), encoding="utf-8")
    print(json.dumps(figures))
    if not args.no_report:
        other = args.work / f"scale_{'large' if args.part == 'small' else 'small'}.json"
        prior = json.loads(other.read_text(encoding="utf-8")) if other.exists() else None
        small, large = (figures, prior) if args.part == "small" else (prior, figures)
        commands = [part["command"] for part in (small, large) if part and "command" in part]
        when = "; ".join(f"{name} part {part['measured_at']}" for name, part in (("small", small), ("large", large))
                         if part and "measured_at" in part)
        write_report(args.out, small, large, figures["machine"], commands, when)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
