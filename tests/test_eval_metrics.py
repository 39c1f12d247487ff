"""Evaluation layer: metric values checked against hand arithmetic, TREC I/O, significance tests, plots."""

from __future__ import annotations

import logging
import math
import struct
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eval import plots
from eval.compare import compare_runs, format_comparison
from eval.latency import percentiles
from recommender.metrics import (
    DEFAULT_METRICS,
    evaluable_queries,
    evaluate,
    evaluate_per_query,
    recall_at_ks,
    warm_up,
)
from recommender.trec import read_qrels, read_run, write_qrels, write_run

# Tiny hand-written world.
#   N1: graded judgements R1=3, R3=2, R2=1 and one judged-non-relevant R4=0.
#   N2: one result of grade 1.
#   N3: one result of grade 2, but N3 is missing from the run -> must count as 0, not be dropped.
#   N4: only a grade-0 judgement -> never evaluable.
QRELS = {
    "N1": {"R1": 3, "R2": 1, "R3": 2, "R4": 0},
    "N2": {"R5": 1},
    "N3": {"R6": 2},
    "N4": {"R7": 0},
}
RUN = {
    # N1 ranking: R1 (grade 3), R4 (0), R2 (1), RX (unjudged). R3 (grade 2) is never retrieved.
    "N1": {"R1": 0.9, "R4": 0.8, "R2": 0.7, "RX": 0.6},
    # N2 ranking: RY (unjudged), R5 (grade 1) at rank 2.
    "N2": {"RY": 0.5, "R5": 0.4},
    "N4": {"R7": 1.0},
    "N9": {"R1": 1.0},  # not in the qrels: ignored
}

LOG2_3 = math.log2(3)
# nDCG@10, linear gain = grade, discount log2(rank + 1):
#   N1 DCG  = 3/log2(2) + 0/log2(3) + 1/log2(4)            = 3 + 0 + 0.5          = 3.5
#   N1 IDCG = 3/log2(2) + 2/log2(3) + 1/log2(4) (ideal 3,2,1) = 3 + 1.26186 + 0.5 = 4.76186
NDCG_N1 = 3.5 / (3 + 2 / LOG2_3 + 0.5)  # 0.73501
#   N2 DCG = 1/log2(3) (grade 1 at rank 2), IDCG = 1/log2(2) = 1
NDCG_N2 = 1 / LOG2_3  # 0.63093


@pytest.fixture(scope="module", autouse=True)
def _jit_warm() -> None:
    """Pay ranx's numba compilation (or cache load) once for the module."""
    warm_up()


def test_evaluable_queries_follow_min_grade() -> None:
    assert evaluable_queries(QRELS, 1) == ["N1", "N2", "N3"]  # N4 has only grade 0
    assert evaluable_queries(QRELS, 2) == ["N1", "N3"]  # N2's only judgement is grade 1
    assert evaluable_queries(QRELS, 3) == ["N1"]
    with pytest.raises(ValueError, match="min_grade"):
        evaluable_queries(QRELS, 0)


def test_per_query_values_match_hand_arithmetic() -> None:
    df = evaluate_per_query(QRELS, RUN, min_grade=1)
    assert list(df.index) == ["N1", "N2", "N3"]
    assert list(df.columns) == list(DEFAULT_METRICS)
    n1, n2, n3 = df.loc["N1"], df.loc["N2"], df.loc["N3"]

    assert n1["ndcg@10"] == pytest.approx(NDCG_N1)
    assert n2["ndcg@10"] == pytest.approx(NDCG_N2)
    # recall@10 (grade >= 1 relevant): N1 finds R1, R2 of {R1, R2, R3} = 2/3; N2 finds R5 of {R5} = 1.
    assert n1["recall@10"] == pytest.approx(2 / 3)
    assert n2["recall@10"] == pytest.approx(1.0)
    # MRR@10: N1 first relevant at rank 1 -> 1; N2 at rank 2 -> 1/2.
    assert n1["mrr@10"] == pytest.approx(1.0)
    assert n2["mrr@10"] == pytest.approx(0.5)
    # AP: N1 relevant at ranks 1 and 3 -> (1/1 + 2/3) / |relevant| = (1 + 2/3) / 3; N2 -> (1/2) / 1.
    assert n1["map@100"] == pytest.approx((1 + 2 / 3) / 3)
    assert n2["map@100"] == pytest.approx(0.5)
    # P@10 divides by 10 even when fewer results were returned.
    assert n1["precision@10"] == pytest.approx(2 / 10)
    assert n2["precision@10"] == pytest.approx(1 / 10)
    # N3 is absent from the run: every metric 0, and it stays in the denominator.
    assert (n3 == 0).all()


def test_means_count_missing_query_as_zero() -> None:
    means = evaluate(QRELS, RUN)
    assert means["ndcg@10"] == pytest.approx((NDCG_N1 + NDCG_N2 + 0) / 3)
    assert means["recall@10"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert means["mrr@10"] == pytest.approx((1 + 0.5 + 0) / 3)
    # Dropping N3 would give a larger mean: make sure that is not what happened.
    assert means["mrr@10"] < (1 + 0.5) / 2


def test_min_grade_thresholds_binary_metrics_but_keeps_graded_gains() -> None:
    df = evaluate_per_query(QRELS, RUN, min_grade=2)
    assert list(df.index) == ["N1", "N3"]
    # Relevant (grade >= 2) for N1: {R1, R3}; retrieved R1 only -> recall 1/2, P@10 = 1/10, AP = (1/1)/2.
    assert df.loc["N1", "recall@10"] == pytest.approx(0.5)
    assert df.loc["N1", "precision@10"] == pytest.approx(0.1)
    assert df.loc["N1", "map@100"] == pytest.approx(0.5)
    assert df.loc["N1", "mrr@10"] == pytest.approx(1.0)
    # nDCG still uses every grade >= 1 as gain (R2's grade 1 at rank 3 still counts).
    assert df.loc["N1", "ndcg@10"] == pytest.approx(NDCG_N1)
    means = evaluate(QRELS, RUN, min_grade=2, metrics=["recall@10", "mrr@10", "ndcg@10"])
    assert means == pytest.approx({"recall@10": 0.25, "mrr@10": 0.5, "ndcg@10": NDCG_N1 / 2})
    # With min_grade=3 only R1 is relevant for N1, found at rank 1.
    assert evaluate(QRELS, RUN, min_grade=3, metrics="recall@10") == {"recall@10": pytest.approx(1.0)}


def test_cutoff_and_recall_curve() -> None:
    # recall@2 for N1: top 2 = R1, R4 -> 1 of 3 relevant; N2: top 2 includes R5 -> 1; N3: 0.
    curve = recall_at_ks(QRELS, RUN, ks=[1, 2, 10])
    assert curve[1] == pytest.approx((1 / 3 + 0 + 0) / 3)
    assert curve[2] == pytest.approx((1 / 3 + 1 + 0) / 3)
    assert curve[10] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert list(curve) == [1, 2, 10]


def test_ties_broken_by_doc_id_consistently_with_trec_files(tmp_path: Path) -> None:
    qrels = {"Q": {"B": 1}}
    run = {"Q": {"B": 0.5, "A": 0.5}}  # tie: ascending doc id puts A first, B at rank 2
    assert evaluate(qrels, run, metrics=["mrr@10"])["mrr@10"] == pytest.approx(0.5)
    path = write_run(run, tmp_path / "tie.run")
    assert [line.split()[2] for line in path.read_text().splitlines()] == ["A", "B"]
    assert evaluate(qrels, read_run(path), metrics=["mrr@10"])["mrr@10"] == pytest.approx(0.5)


def test_invalid_metric_and_empty_qrels_fail_clearly() -> None:
    with pytest.raises(ValueError, match="unsupported metric"):
        evaluate(QRELS, RUN, metrics=["ndcg@10-l2"])
    with pytest.raises(ValueError, match="unsupported metric"):
        evaluate(QRELS, RUN, metrics=["nDCG10"])
    with pytest.raises(ValueError, match="no evaluable queries"):
        evaluate({"N4": {"R7": 0}}, RUN)


def test_trec_round_trip(tmp_path: Path) -> None:
    qrels_path = write_qrels(QRELS, tmp_path / "qrels.txt")
    assert read_qrels(qrels_path) == QRELS
    assert qrels_path.read_text().splitlines()[0] == "N1 0 R1 3"

    run = {"N1": {"R1": 0.9, "R2": 1 / 3, "R3": -2.5e-7}, "N2": {"R5": 12.0}}
    run_path = write_run(run, tmp_path / "run.txt", tag="bm25")
    lines = run_path.read_text().splitlines()
    assert lines[0].split() == ["N1", "Q0", "R1", "1", "0.9", "bm25"]
    assert [line.split()[3] for line in lines] == ["1", "2", "3", "1"]
    assert read_run(run_path) == run  # scores round-trip exactly
    assert evaluate(QRELS, read_run(write_run(RUN, tmp_path / "r2.txt"))) == evaluate(QRELS, RUN)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("N1 0 R1 2\nN1 0 R2\n", r"q\.txt, line 2: .*expected 4 fields"),
        ("N1 0 R1 2\n\nN1 0 R2 high\n", r"q\.txt, line 3: .*field 'grade' must be an integer.*'high'"),
        ("N1 0 R1 2.5\n", r"q\.txt, line 1: .*field 'grade' must be an integer"),
        ("N1 0 R1 2\nN1 0 R1 1\n", r"q\.txt, line 2: conflicting judgement"),
    ],
)
def test_malformed_qrels_line_names_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "q.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_qrels(path)


def test_malformed_run_line(tmp_path: Path) -> None:
    path = tmp_path / "r.txt"
    path.write_text("N1 Q0 R1 1 0.5 tag\nN1 Q0 R2 2 0.4\n")
    with pytest.raises(ValueError, match=r"r\.txt, line 2: .*expected 6 fields"):
        read_run(path)
    path.write_text("N1 Q0 R1 1 abc tag\n")
    with pytest.raises(ValueError, match=r"r\.txt, line 1: .*field 'score' must be a number"):
        read_run(path)


def _comparison_world(n: int = 30) -> tuple[dict, dict, dict]:
    """n needs with one relevant result each: A ranks it 1st (2nd for every 5th need); B ranks it 10th on
    even needs and not at all on odd ones."""
    qrels = {f"N{i:02d}": {f"R{i}": 1} for i in range(n)}
    filler = {f"F{j}": 0.5 - j / 100 for j in range(20)}  # unjudged results, scores 0.50 .. 0.31
    run_a, run_b = {}, {}
    for i in range(n):
        run_a[f"N{i:02d}"] = {**filler, f"R{i}": 1.0 if i % 5 else 0.495}
        run_b[f"N{i:02d}"] = {**filler, f"R{i}": 0.415} if i % 2 == 0 else dict(filler)  # 0.415 -> rank 10
    return qrels, run_a, run_b


@pytest.mark.parametrize("test", ["student", "fisher"])
def test_compare_flags_real_difference_and_not_identical_runs(test: str) -> None:
    qrels, run_a, run_b = _comparison_world()
    means_b = evaluate(qrels, run_b, metrics=["mrr@10"])
    assert means_b["mrr@10"] == pytest.approx(0.5 * 0.1)  # half the needs at rank 10, half missed
    report = compare_runs(
        qrels,
        {"A": run_a, "B": run_b, "A_copy": dict(run_a)},
        metrics=["mrr@10", "ndcg@10", "recall@10"],
        test=test,
    )
    assert report.n_queries == 30
    assert report.means["A"]["mrr@10"] == pytest.approx((24 * 1 + 6 * 0.5) / 30)
    for metric in ("mrr@10", "ndcg@10", "recall@10"):
        assert report.is_significant("A", "B", metric), metric
        assert report.p_value("B", "A", metric) < 0.05
        assert not report.is_significant("A", "A_copy", metric)
        assert report.p_value("A", "A_copy", metric) == 1.0
    pair = report.pair("A", "B", "mrr@10")
    assert pair.delta < 0 and pair.losses == 30 and pair.wins == 0
    text = format_comparison(report)
    assert "A_copy" in text and "mrr@10" in text and "*" in text
    mrr_line = next(line for line in text.splitlines() if line.startswith("mrr@10"))
    assert mrr_line.count("*") == 2  # A vs B and B vs A_copy, not A vs A_copy


def test_compare_rejects_bad_arguments() -> None:
    qrels, run_a, run_b = _comparison_world(5)
    with pytest.raises(ValueError, match="unknown test"):
        compare_runs(qrels, {"A": run_a, "B": run_b}, test="wilcoxon")
    with pytest.raises(ValueError, match="at least two"):
        compare_runs(qrels, {"A": run_a})


def test_evaluate_is_fast_on_realistic_size() -> None:
    """122 needs x 1000 results: must stay interactive once ranx's kernels are compiled."""
    rng = np.random.default_rng(0)
    qrels, run = {}, {}
    for i in range(122):
        docs = [f"R{j}" for j in rng.choice(20000, 1000, replace=False)]
        run[f"N{i}"] = dict(zip(docs, rng.random(1000).tolist(), strict=True))
        qrels[f"N{i}"] = {docs[j]: int(rng.integers(0, 4)) for j in rng.choice(1000, 8, replace=False)}
    start = time.perf_counter()
    means = evaluate(qrels, run)
    assert time.perf_counter() - start < 3.0
    assert set(means) == set(DEFAULT_METRICS)


def test_latency_percentiles() -> None:
    stats = percentiles([0.010] * 98 + [0.100, 0.200])
    assert stats["p50"] == pytest.approx(10.0)
    assert stats["mean"] == pytest.approx((0.98 + 0.3) / 100 * 1000)
    assert stats["p95"] == pytest.approx(10.0)
    # numpy linear interpolation: position 0.99 * 99 = 98.01 between 100 ms and 200 ms.
    assert stats["p99"] == pytest.approx(100 + 0.01 * 100)
    with pytest.raises(ValueError):
        percentiles([])


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 400 and height >= 300
    assert len(data) > 5_000, f"{path} suspiciously small ({len(data)} bytes)"


def _plot_inputs() -> dict:
    rng = np.random.default_rng(1)
    per_query = evaluate_per_query(QRELS, RUN)
    return {
        "recall_curves": {
            "bm25": recall_at_ks(QRELS, RUN, [1, 2, 5, 10]),
            "稠密 dense": {1: 0.4, 2: 0.6, 5: 0.8},
        },
        "per_query": pd.DataFrame({"bm25": per_query["ndcg@10"].to_numpy(), "dense": [0.9, 0.2, 0.5]}),
        "latencies_ms": {"bm25": rng.gamma(2, 5, 200), "dense": rng.gamma(3, 10, 200)},
    }


def test_plots_are_valid_pngs(tmp_path: Path) -> None:
    written = plots.write_eval_plots(tmp_path / "plots", **_plot_inputs())
    assert [p.name for p in written] == ["recall_curves.png", "ndcg_histogram.png", "latency.png"]
    for path in written:
        _assert_png(path)
    # A single system's evaluate_per_query frame is accepted too.
    _assert_png(plots.plot_ndcg_histogram(evaluate_per_query(QRELS, RUN), tmp_path / "one.png"))
    # Raw material (as eval.runner passes it): qrels + runs, latencies in seconds.
    raw = plots.write_eval_plots(
        tmp_path / "raw",
        qrels=QRELS,
        runs={"techmatch": RUN},
        min_grade=1,
        latencies={"techmatch": [0.01, 0.02]},
    )
    assert [p.name for p in raw] == ["recall_curves.png", "ndcg_histogram.png", "latency.png"]
    for path in raw:
        _assert_png(path)


def test_plots_without_cjk_font_warn_once_and_still_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(plots, "_first_usable_family", lambda: None)
    plots.find_cjk_font.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="eval.plots"):
            first = plots.write_eval_plots(tmp_path / "a", **_plot_inputs())
            second = plots.write_eval_plots(tmp_path / "b", **_plot_inputs())
        for path in first + second:
            _assert_png(path)
        warnings = [r for r in caplog.records if "No CJK font" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        plots.find_cjk_font.cache_clear()


# -- issue 21: what was never judged, and duplicate groups ------------------------------------------------
def test_judged_at_10_and_condensed_ndcg_by_hand() -> None:
    from recommender.metrics import judgement_figures

    # judged@10 (denominator 10, as ir-measures' Judged@10), evaluable needs N1, N2, N3:
    #   N1 top: R1, R4, R2 judged, RX not -> 3/10;  N2: RY not, R5 judged -> 1/10;  N3 missing -> 0
    #   mean = (0.3 + 0.1 + 0) / 3 = 0.13333
    # condensed nDCG@10 (unjudged removed first):
    #   N1 R1(3), R4(0), R2(1): RX was last, so DCG stays 3.5 -> NDCG_N1
    #   N2 R5 moves from rank 2 to rank 1 -> 1.0;  N3 -> 0;  mean = (NDCG_N1 + 1) / 3
    figures = judgement_figures(QRELS, RUN, min_grade=1)
    assert figures["judged@10"] == pytest.approx(0.4 / 3)
    assert figures["condensed_ndcg@10"] == pytest.approx((NDCG_N1 + 1.0) / 3)
    # The plain figure for comparison: (NDCG_N1 + NDCG_N2 + 0) / 3 is lower, RY's slot costs N2.
    assert evaluate(QRELS, RUN, 1, ["ndcg@10"])["ndcg@10"] == pytest.approx((NDCG_N1 + NDCG_N2) / 3)


def test_collapse_groups_take_best_rank_and_best_grade() -> None:
    from recommender.metrics import collapse

    # Groups: {R3, R4} (grades 2 and 0 for N1) and {RY, R5} (RY unjudged, R5 grade 1 for N2).
    group_of = {"R3": "G1", "R4": "G1", "RY": "G2", "R5": "G2"}
    qrels, run = collapse(QRELS, RUN, group_of)
    assert qrels["N1"] == {"R1": 3, "R2": 1, "G1": 2}  # the group's grade is its best member's
    assert list(run["N2"]) == ["G2"]  # RY's rank 1, R5 folded into it
    # N1 on groups: R1(3), G1(2) at R4's rank 2, R2(1), RX -> DCG = 3 + 2/log2(3) + 1/2 = the ideal -> 1.0
    # N2: G2 (grade 1) at rank 1 -> 1.0;  N3 (R6 alone, not in the run) -> 0;  mean = 2/3
    assert evaluate(qrels, run, 1, ["ndcg@10"])["ndcg@10"] == pytest.approx(2 / 3)
    # recall@10 (grade >= 2 relevant): N1 G1 found -> R1, G1 of {R1, G1}: 1.0; N2 has no grade >= 2 -> not
    # evaluable; N3 -> 0; mean 0.5
    assert evaluate(qrels, run, 2, ["recall@10"])["recall@10"] == pytest.approx(0.5)


def test_expected_calibration_error_on_hand_made_probabilities() -> None:
    from recommender.metrics import calibration_bins, expected_calibration_error

    # bin [0.2, 0.3): four pairs said 0.2, one came true (observed 0.25); bin [0.9, 1.0]: two said 1.0, one came true.
    probability = [0.2, 0.2, 0.2, 0.2, 1.0, 1.0]
    outcome = [True, False, False, False, True, False]
    table = calibration_bins(probability, outcome, bins=10)
    assert table["pairs"].tolist() == [4, 2] and table["observed"].tolist() == [0.25, 0.5]
    assert expected_calibration_error(probability, outcome) == pytest.approx((4 * 0.05 + 2 * 0.5) / 6)
    assert expected_calibration_error([0.0, 1.0, 0.5, 0.5], [False, True, True, False]) == pytest.approx(0.0)
