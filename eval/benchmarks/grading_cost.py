"""What grading a match costs, with the hits the hybrid search already found and with a second search.

Before the engine handed its hits to the grader, every graded search ran every signal again at the
grader's depth (300) to compute the features' corpus ranks and score statistics. This measures, on
bdci2019 (7,324 results, its dev needs as queries, one at a time as ``/match`` asks), the wall time of a
graded search both ways, and checks that both give the very same grades and probabilities.

    python -m eval.benchmarks.grading_cost [--data ../shared/data] [--repeat 3] [--cross-encoder]

``--cross-encoder`` also times what grading online with the cross-encoder would add (issue 12 item 3: the
service uses it only if its latency target still holds): the cross-encoder reads each search's top ``k``
pairs in one batch, on one thread, as ``techmatch serve`` would. Its weights do not change its cost, so an
untrained one of the shipped shape (64 tokens, 12 layers run) is timed.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one thread, as `techmatch serve`
    os.environ.setdefault(_var, "1")

import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated  # noqa: E402

import numpy as np  # noqa: E402
import typer  # noqa: E402

from eval.benchmarks.run_all import DEFAULT_DATA  # noqa: E402
from recommender.engine import Engine  # noqa: E402
from recommender.learning.training import train_grader  # noqa: E402
from recommender.matcher import Matcher  # noqa: E402
from recommender.records import load_records  # noqa: E402
from recommender.trec import read_qrels  # noqa: E402


def main(
    data: Annotated[Path, typer.Option(help="folder holding bdci2019/")] = DEFAULT_DATA,
    k: Annotated[int, typer.Option(help="matches per search, as /match's default")] = 10,
    repeat: Annotated[int, typer.Option(help="passes over the needs (the first warms caches)")] = 3,
    cross_encoder: Annotated[bool, typer.Option(help="also time the cross-encoder on each search's top k")] = False,
) -> None:
    folder = data / "bdci2019"
    if not folder.exists():
        raise typer.BadParameter(f"{folder} not found: give --data (the shared judged data)")
    needs, _ = load_records(folder / "needs.dev.jsonl", "need")
    results, _ = load_records(folder / "results.jsonl", "result")
    qrels = read_qrels(folder / "qrels.dev.txt")
    engine = Engine.build(results)
    index = engine.matcher.results
    grader = train_grader(index, needs, qrels, seed=0)  # cost, not quality, is measured: in-sample is fine
    engine.matcher = Matcher(index, None, grader)
    queries = [n for n in needs if n.id in qrels]

    def second_search(need):
        matches = index.search([need.as_query()], k)[0]
        grader.annotate(engine.matcher, need.id, matches, "result", query=need)  # searches every signal again
        return matches

    def reused_hits(need):
        return engine.results_for([need], k)[0]

    timings: dict[str, list[float]] = {"second search": [], "hits reused": []}
    model = None
    if cross_encoder:
        import torch

        from recommender.learning.cross_encoder import CrossEncoderConfig, fit_cross_encoder

        torch.set_num_threads(1)
        pairs = [(n, index.records[r]) for n in queries[:8] for r in list(qrels[n.id])[:4] if r in index.records]
        model = fit_cross_encoder([n for n, _ in pairs], [r for _, r in pairs], [qrels[n.id][r.id] for n, r in pairs],
                                  config=CrossEncoderConfig(), progress=False, stop_after_epochs=0)
        timings["cross-encoder on the top k"] = []
        timings["hits reused + cross-encoder"] = []
    for n in range(repeat):
        for need in queries:
            for name, fn in (("second search", second_search), ("hits reused", reused_hits)):
                start = time.perf_counter()
                matches = fn(need)
                if n:
                    timings[name].append((time.perf_counter() - start) * 1000)
                if name == "second search":
                    before = [(m.id, m.grade, m.grade_probability) for m in matches]
                else:
                    after = [(m.id, m.grade, m.grade_probability) for m in matches]
                    assert after == before, f"{need.id}: grades differ with reused hits"
                    if model is not None:
                        start = time.perf_counter()
                        model.cumulative([need] * len(matches), [m.record for m in matches])
                        if n:
                            extra = (time.perf_counter() - start) * 1000
                            timings["cross-encoder on the top k"].append(extra)
                            timings["hits reused + cross-encoder"].append(timings["hits reused"][-1] + extra)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; one thread per call; "
          f"{len(queries)} needs x {repeat - 1} timed passes, top {k}, {len(results)} results; "
          f"grades and probabilities identical both ways")
    for name, values in timings.items():
        p50, p95 = np.percentile(values, [50, 95])
        print(f"{name:>14}: graded search p50 {p50:.1f} ms, p95 {p95:.1f} ms, mean {np.mean(values):.1f} ms")


if __name__ == "__main__":
    typer.run(main)
