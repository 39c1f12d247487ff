"""Evaluation plots (recall curves, per-need nDCG histogram, latency percentiles) written as PNG files.

Figures are built with ``matplotlib.figure.Figure`` and saved through the Agg canvas, never through pyplot, so
no window is ever opened and the global backend of the host process (e.g. a notebook) is left alone.

Labels are bilingual (English + Chinese) when a CJK font is installed (Debian: ``fonts-noto-cjk``). Without
one the Chinese parts are dropped, a warning is logged once, and plots are still written.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter

from eval.latency import percentiles

__all__ = [
    "find_cjk_font",
    "plot_gain_curves",
    "plot_latency",
    "plot_ndcg_histogram",
    "plot_recall_curves",
    "write_eval_plots",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

# Preferred families, Simplified Chinese first.
_CJK_FAMILIES: tuple[str, ...] = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Heiti SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
    "Noto Sans CJK KR",
    "Noto Serif CJK SC",
    "Noto Serif CJK JP",
    "AR PL UMing CN",
    "AR PL UKai CN",
    "Droid Sans Fallback",
)
# File-name fragments (lower case, no '-'/'_') of CJK fonts, to find fonts installed after matplotlib's cache.
_CJK_FILE_HINTS: tuple[str, ...] = (
    "notosanscjk",
    "notoserifcjk",
    "notosanssc",
    "sourcehansans",
    "wqy",
    "simhei",
    "msyh",
    "pingfang",
    "uming",
    "ukai",
    "droidsansfallback",
)
_PROBE_CHARS = "召回率"


def _covers_chinese(family: str) -> bool:
    """True if the file matplotlib would use for ``family`` really has Chinese glyphs."""
    try:
        path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        font = FT2Font(path)
        return all(font.get_char_index(ord(ch)) != 0 for ch in _PROBE_CHARS)
    except Exception:  # noqa: BLE001 - any font problem just means "not usable"
        return False


def _first_usable_family() -> str | None:
    installed = {f.name for f in font_manager.fontManager.ttflist}
    for family in _CJK_FAMILIES:
        if family in installed and _covers_chinese(family):
            return family
    return None


@functools.lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """Name of an installed font family that renders Chinese, or None (logged once, cached).

    matplotlib's font cache can predate ``apt-get install fonts-noto-cjk``, so when no known family is cached
    the system font directories are scanned and matching files are registered with ``addfont``.
    """
    family = _first_usable_family()
    if family is None:
        for path in sorted(font_manager.findSystemFonts()):
            name = Path(path).name.lower().replace("-", "").replace("_", "")
            if any(hint in name for hint in _CJK_FILE_HINTS):
                with contextlib.suppress(Exception):
                    font_manager.fontManager.addfont(path)
        family = _first_usable_family()
    if family is None:
        logger.warning(
            "No CJK font found for matplotlib; Chinese plot labels are omitted. "
            "Install one, e.g. `apt-get install fonts-noto-cjk` (Debian/Ubuntu)."
        )
    else:
        logger.debug("Using CJK font %r for plots", family)
    return family


@contextlib.contextmanager
def _plot_style() -> Iterator[str | None]:
    """rc settings for one figure (CJK font first, DejaVu Sans as fallback); yields the CJK family or None."""
    family = find_cjk_font()
    rc = {
        "font.family": "sans-serif",
        "font.sans-serif": ([family] if family else []) + ["DejaVu Sans"],
        "axes.unicode_minus": False,  # CJK fonts often lack U+2212 MINUS SIGN
        "figure.dpi": 100,
    }
    with matplotlib.rc_context(rc), warnings.catch_warnings():
        # Without a CJK font, Chinese system names would warn once per glyph; boxes are drawn instead.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from (current )?font")
        yield family


def _bilingual(english: str, chinese: str, family: str | None) -> str:
    return f"{english}\n{chinese}" if family else english


def _save(fig: Figure, path: PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)
    return path


def plot_recall_curves(curves: Mapping[str, Mapping[int, float]], path: PathLike) -> Path:
    """Recall@k against k (log axis) for each system: shows how deep a candidate list must be to be useful."""
    if not curves:
        raise ValueError("no recall curves to plot")
    with _plot_style() as cjk:
        fig = Figure(figsize=(7.5, 5))
        ax = fig.add_subplot()
        all_ks: set[int] = set()
        for name, curve in curves.items():
            ks = sorted(curve)
            all_ks.update(ks)
            ax.plot(ks, [curve[k] for k in ks], marker="o", label=str(name))
        ks = sorted(all_ks)
        if len(ks) > 1 and ks[0] > 0:
            ax.set_xscale("log")
        ax.set_xticks(ks)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(_bilingual("k (results per need)", "每个需求返回的成果数", cjk))
        ax.set_ylabel(_bilingual("mean recall@k", "平均召回率", cjk))
        ax.set_title(_bilingual("Recall curves", "召回率曲线", cjk))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
        return _save(fig, path)


def plot_gain_curves(curves: Mapping[str, Sequence[int]], pool: int, relevant: int, path: PathLike) -> Path:
    """Transferable found against results read for each review strategy (the review loop's gain curves), with
    random reading's expectation as the diagonal and the 80% / 95% recall levels."""
    if not curves:
        raise ValueError("no gain curves to plot")
    with _plot_style() as cjk:
        fig = Figure(figsize=(7.5, 5))
        ax = fig.add_subplot()
        for name, gains in curves.items():
            ax.plot(np.arange(1, len(gains) + 1), gains, label=str(name))
        ax.plot([0, pool], [0, relevant], linestyle=":", color="grey", label="random (expected)")
        for share in (0.8, 0.95):
            ax.axhline(share * relevant, linestyle="--", linewidth=0.8, color="lightgrey")
        ax.set_xlim(0, pool)
        ax.set_ylim(0, relevant * 1.02)
        ax.set_xlabel(_bilingual("results read", "已阅读成果数", cjk))
        ax.set_ylabel(_bilingual("transferable found", "已发现可转化成果", cjk))
        ax.set_title(_bilingual("Review gain curves", "审阅增益曲线", cjk))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
        return _save(fig, path)


def _per_query_series(
    per_query: Mapping[str, Sequence[float]] | pd.DataFrame, metric: str
) -> dict[str, np.ndarray]:
    """Accept {system: scores}, a DataFrame of systems as columns, or one system's evaluate_per_query()."""
    if isinstance(per_query, pd.DataFrame):
        if metric in per_query.columns:  # evaluate_per_query output of a single system
            return {metric: per_query[metric].to_numpy(dtype=float)}
        return {str(c): per_query[c].to_numpy(dtype=float) for c in per_query.columns}
    return {str(name): np.asarray(values, dtype=float) for name, values in per_query.items()}


def plot_ndcg_histogram(
    per_query: Mapping[str, Sequence[float]] | pd.DataFrame,
    path: PathLike,
    metric: str = "ndcg@10",
) -> Path:
    """Distribution of per-need scores: a mean hides whether a system fails completely on many needs.

    ``per_query`` is ``{system: per-need scores}``, a DataFrame with one column per system, or a single
    system's ``evaluate_per_query`` frame (then the ``metric`` column is used).
    """
    series = _per_query_series(per_query, metric)
    if not series or any(v.size == 0 for v in series.values()):
        raise ValueError("no per-query scores to plot")
    with _plot_style() as cjk:
        fig = Figure(figsize=(7.5, 5))
        ax = fig.add_subplot()
        bins = np.linspace(0.0, 1.0, 11)
        names = list(series)
        labels = [f"{n} (mean {series[n].mean():.3f}, n={series[n].size})" for n in names]
        _, _, patches = ax.hist([np.clip(series[n], 0, 1) for n in names], bins=bins, label=labels)
        patch_groups = [patches] if len(names) == 1 else patches
        for name, group in zip(names, patch_groups, strict=True):
            color = group[0].get_facecolor()
            ax.axvline(series[name].mean(), color=color, linestyle="--", linewidth=1.2)
        ax.set_xticks(bins)
        ax.set_xlim(0, 1)
        xlabel = _bilingual(f"{metric} per need (dashed: mean)", f"每个需求的 {metric}（虚线：均值）", cjk)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(_bilingual("number of needs", "需求数", cjk))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(_bilingual(f"Per-need {metric} distribution", f"{metric} 分布", cjk))
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(loc="best")
        return _save(fig, path)


def plot_latency(latencies_ms: Mapping[str, Sequence[float]], path: PathLike) -> Path:
    """p50/p95/p99 latency bars per system (ms) with the values printed: tail latency is what users feel."""
    if not latencies_ms:
        raise ValueError("no latencies to plot")
    stats = {name: percentiles(np.asarray(v, dtype=float) / 1000.0) for name, v in latencies_ms.items()}
    keys = ("p50", "p95", "p99")
    with _plot_style() as cjk:
        fig = Figure(figsize=(max(6.0, 1.8 * len(stats) + 3), 5))
        ax = fig.add_subplot()
        names = list(stats)
        x = np.arange(len(names))
        width = 0.8 / len(keys)
        for i, key in enumerate(keys):
            values = [stats[n][key] for n in names]
            bars = ax.bar(x + (i - 1) * width, values, width, label=key)
            ax.bar_label(bars, fmt="%.1f", fontsize=8, padding=2)
        means = [stats[n]["mean"] for n in names]
        ax.scatter(x, means, marker="D", color="black", zorder=3, label=_bilingual("mean", "均值", cjk))
        ax.set_xticks(x, [f"{n}\n(n={len(latencies_ms[n])})" for n in names])
        ax.set_ylabel(_bilingual("latency (ms)", "延迟（毫秒）", cjk))
        ax.set_title(_bilingual("Query latency percentiles", "查询延迟分位数", cjk))
        ax.set_ylim(0, max(stats[n]["p99"] for n in names) * 1.15 or 1.0)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(loc="upper left")
        return _save(fig, path)


RECALL_KS: tuple[int, ...] = (1, 5, 10, 20, 50, 100)


def write_eval_plots(
    out_dir: PathLike,
    *,
    qrels: Mapping[str, Mapping[str, int]] | None = None,
    runs: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    min_grade: int = 1,
    latencies: Mapping[str, Sequence[float]] | None = None,
    recall_curves: Mapping[str, Mapping[int, float]] | None = None,
    per_query: Mapping[str, Sequence[float]] | pd.DataFrame | None = None,
    latencies_ms: Mapping[str, Sequence[float]] | None = None,
    metric: str = "ndcg@10",
    ks: Sequence[int] = RECALL_KS,
) -> list[Path]:
    """Write whichever plots have data into ``out_dir``: recall_curves.png, ndcg_histogram.png, latency.png.

    Either pass raw material, ``qrels`` + ``runs`` ({system: run}, metrics computed by ``recommender.metrics`` with
    ``min_grade``) and ``latencies`` ({system: seconds per request}), or precomputed ``recall_curves``,
    ``per_query`` scores and ``latencies_ms``; precomputed inputs win when both are given.
    """
    if (runs is None) != (qrels is None):
        raise ValueError("qrels and runs must be given together")
    if runs:
        from recommender.metrics import evaluate_per_query, recall_at_ks

        if recall_curves is None:
            recall_curves = {name: recall_at_ks(qrels, run, ks, min_grade) for name, run in runs.items()}
        if per_query is None:
            per_query = {
                name: evaluate_per_query(qrels, run, min_grade, [metric])[metric].to_numpy()
                for name, run in runs.items()
            }
    if latencies_ms is None and latencies:
        latencies_ms = {name: np.asarray(v, dtype=float) * 1000.0 for name, v in latencies.items()}

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if recall_curves:
        written.append(plot_recall_curves(recall_curves, out / "recall_curves.png"))
    if per_query is not None and len(per_query) > 0:
        written.append(plot_ndcg_histogram(per_query, out / "ndcg_histogram.png", metric=metric))
    if latencies_ms and any(len(v) for v in latencies_ms.values()):
        written.append(plot_latency(latencies_ms, out / "latency.png"))
    return written
