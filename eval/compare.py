"""Paired significance testing between systems, so that a reported improvement is not just query-set noise.

The statistics are ranx's: per-query scores come from ``recommender.metrics`` (ranx kernels) and the p-values from
``ranx.statistical_tests.compute_statistical_significance``, the very function ``ranx.compare`` calls. We do
not call ``ranx.compare`` itself because it needs ``ranx.Run``/``ranx.Qrels`` objects (numba typed dicts:
seconds of overhead per process, ranx's own tie-breaking and doc-id hashing) and would bypass the min_grade
semantics and missing-query handling implemented once in ``recommender.metrics``.

No multiple-comparison correction is applied: with many metrics x pairs, expect some p < 0.05 by chance.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from recommender.metrics import DEFAULT_METRICS, QrelsLike, RunLike, per_query_scores

__all__ = ["ComparisonReport", "PairTest", "compare_runs", "format_comparison"]

_TESTS = {
    "student": "two-sided paired Student's t-test",
    "fisher": "Fisher's randomization test (paired)",
    "tukey": "Tukey's HSD test (unpaired)",
}


@dataclass(frozen=True)
class PairTest:
    """Outcome of one significance test: ``system`` vs ``baseline`` on one metric."""

    baseline: str
    system: str
    metric: str
    delta: float  # mean(system) - mean(baseline)
    p_value: float
    significant: bool
    wins: int  # queries where system > baseline
    ties: int
    losses: int


@dataclass
class ComparisonReport:
    """Means, per-query scores and pairwise tests for several runs evaluated on the same needs."""

    systems: list[str]
    metrics: list[str]
    means: dict[str, dict[str, float]]  # system -> metric -> mean
    per_query: dict[str, pd.DataFrame]  # system -> (need_id x metric)
    tests: dict[tuple[str, str], dict[str, PairTest]]  # (baseline, system), baseline earlier in systems
    test: str
    alpha: float
    min_grade: int
    n_queries: int
    n_permutations: int = 1000
    notes: list[str] = field(default_factory=list)

    def pair(self, a: str, b: str, metric: str) -> PairTest:
        """The test between systems a and b on metric (in either order)."""
        if (a, b) in self.tests:
            return self.tests[(a, b)][metric]
        return self.tests[(b, a)][metric]

    def p_value(self, a: str, b: str, metric: str) -> float:
        return self.pair(a, b, metric).p_value

    def is_significant(self, a: str, b: str, metric: str) -> bool:
        return self.pair(a, b, metric).significant


def compare_runs(
    qrels: QrelsLike,
    runs: Mapping[str, RunLike],
    min_grade: int = 1,
    metrics: Sequence[str] = DEFAULT_METRICS,
    test: str = "student",
    alpha: float = 0.05,
    n_permutations: int = 1000,
    random_seed: int = 42,
) -> ComparisonReport:
    """Evaluate every run on the same evaluable needs and test every pair of systems on every metric.

    ``runs`` maps a system name to its run; the first system is the baseline in ``format_comparison``.
    ``test`` is "student" (default), "fisher" (randomization, ``n_permutations``, seeded) or "tukey".
    A pair whose per-query scores are identical gets p = 1 (scipy's t-test would return NaN).
    Caveat: ranx's Fisher test seeds numba's RNG but draws in parallel threads with their own RNG streams,
    so its p-values vary between calls by the Monte Carlo error (about +-1/n_permutations near small p).
    """
    from ranx.statistical_tests import compute_statistical_significance  # deferred: heavy import

    if test not in _TESTS:
        raise ValueError(f"unknown test {test!r}; use one of {sorted(_TESTS)}")
    if len(runs) < 2:
        raise ValueError(f"need at least two runs to compare, got {len(runs)}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    systems = list(runs)
    metrics = list(metrics)

    qids: list[str] = []
    scores: dict[str, dict[str, np.ndarray]] = {}
    for name in systems:
        qids, scores[name] = per_query_scores(qrels, runs[name], min_grade, metrics)
    notes: list[str] = []
    if len(qids) < 2 and test != "tukey":
        notes.append(f"only {len(qids)} evaluable need(s): p-values are meaningless")

    with warnings.catch_warnings():
        # scipy warns (and returns NaN) when all paired differences are zero; handled below.
        warnings.simplefilter("ignore", RuntimeWarning)
        raw = compute_statistical_significance(
            model_names=systems,
            metric_scores=scores,
            stat_test=test,
            n_permutations=n_permutations,
            max_p=alpha,
            random_seed=random_seed,
        )

    tests: dict[tuple[str, str], dict[str, PairTest]] = {}
    for baseline, system in combinations(systems, 2):
        per_metric = {}
        for m in metrics:
            base, other = scores[baseline][m], scores[system][m]
            p_value = float(raw[(baseline, system)][m]["p_value"])
            if np.array_equal(base, other):
                p_value = 1.0
            per_metric[m] = PairTest(
                baseline=baseline,
                system=system,
                metric=m,
                delta=float(other.mean() - base.mean()),
                p_value=p_value,
                significant=bool(p_value <= alpha),  # same rule as ranx (p <= max_p); NaN -> False
                wins=int(np.sum(other > base)),
                ties=int(np.sum(other == base)),
                losses=int(np.sum(other < base)),
            )
        tests[(baseline, system)] = per_metric

    return ComparisonReport(
        systems=systems,
        metrics=metrics,
        means={s: {m: float(scores[s][m].mean()) for m in metrics} for s in systems},
        per_query={s: pd.DataFrame(scores[s], index=pd.Index(qids, name="need_id")) for s in systems},
        tests=tests,
        test=test,
        alpha=alpha,
        min_grade=min_grade,
        n_queries=len(qids),
        n_permutations=n_permutations,
        notes=notes,
    )


def _fmt_p(p: float, floor: float = 1e-4) -> str:
    """Format a p-value; ``floor`` is the smallest meaningful value (1/n_permutations for Fisher)."""
    if math.isnan(p):
        return "n/a"
    return f"<{floor:g}" if p < floor else f"{p:.4f}"


def format_comparison(report: ComparisonReport, digits: int = 4) -> str:
    """Plain-text table: every system's means side by side, then delta, p-value and '*' for each pair."""
    pairs = list(report.tests)
    floor = 1.0 / report.n_permutations if report.test == "fisher" else 1e-4
    header = ["metric", *report.systems]
    for baseline, system in pairs:
        header += [f"Δ {system}-{baseline}", f"p {system}/{baseline}", ""]
    rows = [header]
    for m in report.metrics:
        row = [m, *(f"{report.means[s][m]:.{digits}f}" for s in report.systems)]
        for pair in pairs:
            t = report.tests[pair][m]
            row += [f"{t.delta:+.{digits}f}", _fmt_p(t.p_value, floor), "*" if t.significant else ""]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    title = (
        f"{len(report.systems)} systems, {report.n_queries} evaluable needs (min_grade={report.min_grade}); "
        f"{_TESTS[report.test]}; * = significant at alpha={report.alpha:g} (p <= alpha), no correction"
    )
    lines = [title]
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    lines.extend(f"note: {n}" for n in report.notes)
    return "\n".join(lines)
