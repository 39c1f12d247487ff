"""Lexical matching in Milvus mode, measured: Milvus's own BM25 full-text search vs the project's BM25 (bm25s).

    python -m eval.benchmarks.milvus_bm25 [--uri var/benchmarks/milvus_bm25.db] [--out var/benchmarks/milvus_bm25.json]

Both read exactly the same tokens: the project's jieba tokenizer (domain lexicon, stop words) cuts every
text, and Milvus receives the tokens joined by spaces, each made of word characters only, so its
``standard`` analyzer (Milvus Lite: ``\\w+``) splits them back into the same tokens; k1 = 1.2, b = 0.75 on
both sides. On bdci2019 dev (91 needs, 7,324 results) it measures BM25 alone and the default hybrid (dense
+ bm25 + char) with each BM25, and each BM25's latency for one query (top 200, the fusion depth).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval.benchmarks.run_all import REPO, machine
from eval.compare import compare_runs
from eval.latency import percentiles
from eval.runner import rank_all
from recommender.filters import Metadata, ResultFilters
from recommender.metrics import DEFAULT_METRICS, evaluable_queries, evaluate
from recommender.records import load_records
from recommender.signal import Hits, Signal, Texts
from recommender.trec import read_qrels

_NOT_WORD = re.compile(r"\W", re.UNICODE)


def milvus_text(tokens: Sequence[str]) -> str:
    """The project's tokens as text that Milvus's standard analyzer splits back into the same tokens."""
    return " ".join(_NOT_WORD.sub("_", t) for t in tokens)


class MilvusBM25Signal(Signal):
    """BM25 inside Milvus (a BM25 function over a text field, sparse inverted index): the alternative measured."""

    def __init__(self, tokenize: Any, uri: str, collection: str = "bm25", name: str = "bm25",
                 k1: float = 1.2, b: float = 0.75) -> None:
        from pymilvus import MilvusClient

        self.name, self.tokenize, self.collection, self.k1, self.b = name, tokenize, collection, k1, b
        self.client = MilvusClient(uri)

    def fit(self, ids: Sequence[str], docs: Sequence[Texts], metadata: Metadata | None = None) -> None:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=1024)
        schema.add_field("text", DataType.VARCHAR, max_length=65535, enable_analyzer=True,
                         analyzer_params={"tokenizer": "standard"})
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                     output_field_names=["sparse"]))
        index_params = self.client.prepare_index_params()
        index_params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                               params={"bm25_k1": self.k1, "bm25_b": self.b})
        if self.client.has_collection(self.collection):
            self.client.drop_collection(self.collection)
        self.client.create_collection(self.collection, schema=schema, index_params=index_params,
                                      consistency_level="Strong")
        self.upsert(ids, docs)
        self.client.flush(self.collection)
        self.client.load_collection(self.collection)

    def upsert(self, ids: Sequence[str], docs: Sequence[Texts], metadata: Metadata | None = None) -> None:
        rows = [{"id": i, "text": milvus_text(self.tokenize(d.text))} for i, d in zip(ids, docs)]
        for start in range(0, len(rows), 2000):
            self.client.upsert(self.collection, rows[start:start + 2000])

    def delete(self, ids: Sequence[str]) -> None:
        self.client.delete(self.collection, ids=list(ids))

    def _search(self, query: Texts, limit: int, expression: str = "") -> Hits:
        text = milvus_text(self.tokenize(query.text))
        if not text or limit <= 0:
            return []
        answer = self.client.search(self.collection, data=[text], anns_field="sparse", limit=min(limit, 16384),
                                    filter=expression, search_params={"metric_type": "BM25"}, output_fields=[])
        return [(str(i), float(s)) for i, s in zip(answer[0].ids, answer[0].distances)]

    def search(self, queries: Sequence[Texts], depth: int, filters: ResultFilters | None = None) -> list[Hits]:
        return [self._search(q, depth) for q in queries]

    def score(self, queries: Sequence[Texts], ids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        from recommender.ann.milvus_index import string_literal

        out = []
        for q, doc_ids in zip(queries, ids):
            expression = f"id in [{', '.join(string_literal(d) for d in doc_ids)}]" if doc_ids else ""
            found = dict(self._search(q, len(doc_ids), expression)) if doc_ids else {}
            out.append(np.array([found.get(d, 0.0) for d in doc_ids], dtype=np.float32))
        return out

    def save(self, folder: Path) -> list[str]:
        raise NotImplementedError("benchmark only")

    def load(self, folder: Path) -> None:
        raise NotImplementedError("benchmark only")


def measure(uri: Path, data: Path) -> dict[str, Any]:
    from embeddings.tokenizer import get_tokenizer
    from recommender.hybrid import HybridIndex
    from recommender.pipeline import build_signals
    from recommender.settings import PipelineSettings

    needs, _ = load_records(data / "needs.dev.jsonl", "need")
    results, _ = load_records(data / "results.jsonl", "result")
    qrels = read_qrels(data / "qrels.dev.txt")
    wanted = set(evaluable_queries(qrels, 2))
    needs = [n for n in needs if n.id in wanted]
    tokenizer = get_tokenizer()
    shutil.rmtree(uri, ignore_errors=True)
    settings = PipelineSettings()
    figures: dict[str, Any] = {"needs": len(needs), "results": len(results), "machine": machine()}

    start = time.perf_counter()
    milvus = MilvusBM25Signal(tokenizer.tokenize, str(uri))
    systems: dict[str, HybridIndex] = {}
    runs: dict[str, dict] = {}
    for label, bm25 in (("bm25s", None), ("milvus", milvus)):
        signals = build_signals(settings, "result")
        if bm25 is not None:
            signals = [bm25 if s.name == "bm25" else s for s in signals]
        start = time.perf_counter()
        hybrid = HybridIndex("result", signals, settings.weights, settings.rrf_k, settings.depth)
        hybrid.build(results)
        figures[f"{label}_build_s"] = round(time.perf_counter() - start, 1)
        systems[label] = hybrid
        alone = HybridIndex("result", [hybrid.signals["bm25"]], {"bm25": 1.0}, settings.rrf_k, settings.depth)
        alone.records = hybrid.records
        for name, index in (("bm25 alone", alone), ("hybrid", hybrid)):
            run, _ = rank_all(index, needs, progress=False)
            runs[f"{label}: {name}"] = run
            scores = evaluate(qrels, run, 2, DEFAULT_METRICS)
            figures[f"{label}: {name}"] = {k: round(v, 4) for k, v in scores.items()}
        queries = [n.as_query() for n in needs]
        signal = hybrid.signals["bm25"]
        signal.search(queries[:3], settings.depth)  # warm-up (bm25s builds lazily)
        latencies = []
        for q in queries:
            begin = time.perf_counter()
            signal.search([q], settings.depth)
            latencies.append(time.perf_counter() - begin)
        figures[f"{label}_latency_ms"] = percentiles(latencies)
    a, b = systems["bm25s"].signals["bm25"], systems["milvus"].signals["bm25"]
    queries = [n.as_query() for n in needs]
    overlap = [len({d for d, _ in x[:10]} & {d for d, _ in y[:10]}) / max(1, min(10, len(x)))
               for x, y in zip(a.search(queries, 10), b.search(queries, 10))]
    figures["top10_overlap"] = round(float(np.mean(overlap)), 4)
    for name in ("bm25 alone", "hybrid"):  # paired t-test over needs, Milvus's BM25 against bm25s
        report = compare_runs(qrels, {"bm25s": runs[f"bm25s: {name}"], "milvus": runs[f"milvus: {name}"]}, 2)
        figures[f"p_value: {name}"] = {m: round(report.p_value("bm25s", "milvus", m), 4) for m in report.metrics}
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.benchmarks.milvus_bm25", description=__doc__.splitlines()[0])
    ap.add_argument("--uri", type=Path, default=REPO / "var" / "benchmarks" / "milvus_bm25.db")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "bdci2019")
    ap.add_argument("--out", type=Path, default=REPO / "var" / "benchmarks" / "milvus_bm25.json")
    args = ap.parse_args(argv)
    if not (args.data / "qrels.dev.txt").exists():
        ap.error(f"bdci2019 not found at {args.data} (give --data)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figures = measure(args.uri, args.data)
    args.out.write_text(json.dumps(figures, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
