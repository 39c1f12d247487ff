"""Features of one (need, result) pair: what a technology manager looks at, as numbers a model can learn from.

Every signal of the hybrid index contributes its score for the pair, its rank for the need over the whole
corpus, and the score relative to the need's best candidates (a 0.8 cosine means little if fifty results
score 0.85). Text features add what the signals blur: the dense similarity of the need's *full* text
(signals embed titles only), character and term overlap of the titles, the longest shared run of
characters, lengths, and whether the records' fields agree. Corpus-relative (not batch-relative)
normalisation keeps the features identical whether a pair is graded alone, in a judged list of thirty
candidates, or among the hybrid's top three hundred.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from difflib import SequenceMatcher

import numpy as np

from embeddings.tokenizer import get_tokenizer
from recommender.hybrid import HybridIndex
from recommender.records import Record
from recommender.signal import Hits

FEATURE_VERSION = 1
CORPUS_DEPTH = 300  # candidates per signal used for ranks and the need's score statistics
FULL_TEXT_CHARS = 512  # the e5 window: longer need texts are cut before embedding
_NOT_TEXT = re.compile(r"[\s\W_]+", re.UNICODE)
FIELD_KEYS = ("field", "industry", "category", "sector")

SIGNAL_FEATURES = ("score", "rank_log", "in_top", "minus_top1", "ratio_top1", "minus_top10", "z")
TEXT_FEATURES = (
    "rrf", "dense_full", "dense_full_minus_top1", "title_char_jaccard", "rtitle_chars_in_ntitle",
    "rtitle_bigrams_in_ntitle", "rtitle_bigrams_in_ntext", "lcs_title", "lcs_title_ratio", "lcs_text",
    "rtitle_terms", "rtitle_terms_in_ntext", "rtitle_terms_in_ntitle", "ntitle_terms_in_rtitle",
    "shared_key_terms", "ntitle_len", "ntext_len", "rtitle_len", "rtext_len", "field_agree",
)


def feature_names(signals: Sequence[str]) -> list[str]:
    """Column names for an index with these signals (stored with every model to catch mismatches)."""
    return [f"{s}_{f}" for s in signals for f in SIGNAL_FEATURES] + list(TEXT_FEATURES)


def _chars(text: str) -> str:
    return _NOT_TEXT.sub("", text.lower())


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or ({text} if text else set())


def _fraction(part: set[str], whole: set[str]) -> float:
    return len(part & whole) / len(part) if part else 0.0


def _longest_common_run(a: str, b: str) -> int:
    if not a or not b:
        return 0
    return SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b)).size


def _field_agreement(need: Record, result: Record) -> float:
    """1 same field, 0 different, -1 unknown (either side has no field)."""
    left = next((str(need.extra[k]) for k in FIELD_KEYS if need.extra.get(k)), "")
    right = next((str(result.extra[k]) for k in FIELD_KEYS if result.extra.get(k)), "")
    if not left or not right:
        return -1.0
    return 1.0 if left in right or right in left else 0.0


class PairFeaturizer:
    """Turns (need, result id) pairs into a feature matrix using a results-side ``HybridIndex``."""

    def __init__(self, index: HybridIndex, depth: int = CORPUS_DEPTH) -> None:
        if index.kind != "result":
            raise ValueError("pair features need the results-side index (needs are the queries)")
        self.index = index
        self.depth = depth
        self.signals = list(index.signals)
        self.names = feature_names(self.signals)
        self.tokenizer = get_tokenizer()
        self._dense = next((s for s in index.signals.values() if hasattr(s, "embedder")), None)

    def _need_context(self, need: Record, known_hits: Mapping[str, Hits] | None = None) -> dict:
        """Per-need statistics over the corpus: each signal's ranking and top scores.

        ``known_hits`` are signal candidate lists the caller already has for this need's query, from searches
        at least ``depth`` deep (``HybridIndex.search_with_hits``): their first ``depth`` entries are exactly
        what searching again would give, so they are used instead."""
        query = need.as_query()
        context: dict = {"query": query, "signals": {}}
        for name, signal in self.index.signals.items():
            given = (known_hits or {}).get(name)
            hits = given[:self.depth] if given is not None else signal.search([query], self.depth)[0]
            scores = np.array([s for _, s in hits], dtype=np.float64)
            context["signals"][name] = {
                "rank": {d: r for r, (d, _) in enumerate(hits, start=1)},
                "top1": float(scores[0]) if len(scores) else 0.0,
                "top10": float(scores[min(9, len(scores) - 1)]) if len(scores) else 0.0,
                "mean": float(scores.mean()) if len(scores) else 0.0,
                "std": float(scores.std()) if len(scores) > 1 else 1.0,
            }
        title_terms = self.tokenizer.tokenize(need.title)
        context["title_terms"] = set(title_terms)
        context["text_terms"] = set(self.tokenizer.tokenize(need.text))
        context["key_terms"] = self.tokenizer.key_terms(need.text, 12)
        context["title_chars"] = _chars(need.title)
        context["text_chars"] = _chars(need.text)
        return context

    def _full_text_similarity(self, needs: Sequence[Record], groups: dict[int, list[int]],
                              result_ids: Sequence[str]) -> tuple[np.ndarray, dict[int, float]]:
        """Cosine of each need's full text (query role) with the result's passage vector, and its corpus top."""
        sims = np.zeros(len(result_ids), dtype=np.float64)
        tops: dict[int, float] = {}
        if self._dense is None:
            return sims, {g: 0.0 for g in groups}
        firsts = list(groups)
        vectors = self._dense.embedder.embed_queries([needs[g].text[:FULL_TEXT_CHARS] for g in firsts])
        ann = self._dense.ann
        for vector, g in zip(vectors, firsts):
            members = groups[g]
            found = set(ann.present([result_ids[i] for i in members]))  # one call, not one per pair (Milvus)
            present = [i for i in members if result_ids[i] in found]
            if present:
                sims[present] = ann.vectors([result_ids[i] for i in present]) @ vector
            hits = ann.search(vector[None, :], 1)[0]
            tops[g] = float(hits[0][1]) if hits else 0.0
        return sims, tops

    def transform(
        self, needs: Sequence[Record], result_ids: Sequence[str], known_hits: Mapping[str, Hits] | None = None
    ) -> np.ndarray:
        """One row per pair (needs[i], result_ids[i]); unknown result ids raise ``KeyError``.

        ``known_hits``: the signals' candidate lists for the query, when every pair has the same need."""
        if len(needs) != len(result_ids):
            raise ValueError(f"{len(needs)} needs but {len(result_ids)} result ids: pairs must align")
        unknown = [r for r in result_ids if r not in self.index.records]
        if unknown:
            raise KeyError(f"result id '{unknown[0]}' is not in the index ({len(unknown)} unknown)")
        groups: dict[int, list[int]] = {}
        first_of: dict[tuple[str, str, str], int] = {}
        for i, need in enumerate(needs):
            key = (need.id, need.title, need.body)
            groups.setdefault(first_of.setdefault(key, i), []).append(i)
        out = np.zeros((len(needs), len(self.names)), dtype=np.float64)
        full, full_top = self._full_text_similarity(needs, groups, result_ids)
        weights, rrf_k = self.index.weights, self.index.rrf_k
        for g, members in groups.items():
            need = needs[g]
            context = self._need_context(need, known_hits)
            ids = [result_ids[i] for i in members]
            scores = self.index.score_pairs([context["query"]], [ids])
            for row, i in enumerate(members):
                record = self.index.records[result_ids[i]]
                values: list[float] = []
                rrf = 0.0
                for name in self.signals:
                    stats = context["signals"][name]
                    score = float(scores[name][0][row])
                    rank = stats["rank"].get(record.id)
                    if rank is not None:
                        rrf += weights.get(name, 1.0) / (rrf_k + rank)
                    values += [
                        score, float(np.log1p(rank if rank is not None else self.depth * 2)), float(rank is not None),
                        score - stats["top1"], score / stats["top1"] if stats["top1"] > 0 else 0.0,
                        score - stats["top10"], (score - stats["mean"]) / (stats["std"] or 1.0),
                    ]
                values += self._text_features(context, need, record)
                values[len(self.signals) * len(SIGNAL_FEATURES)] = rrf
                values[len(self.signals) * len(SIGNAL_FEATURES) + 1] = full[i]
                values[len(self.signals) * len(SIGNAL_FEATURES) + 2] = full[i] - full_top[g]
                out[i] = values
        return out

    def _text_features(self, context: dict, need: Record, record: Record) -> list[float]:
        """The TEXT_FEATURES of one pair (the first three, rrf and dense_full, are filled by the caller)."""
        r_title = _chars(record.title)
        n_title, n_text = context["title_chars"], context["text_chars"]
        r_terms = set(self.tokenizer.tokenize(record.title))
        r_text_lower = record.text.lower()
        lcs_title = _longest_common_run(n_title, r_title)
        return [
            0.0, 0.0, 0.0,
            len(set(n_title) & set(r_title)) / max(1, len(set(n_title) | set(r_title))),
            _fraction(set(r_title), set(n_title)),
            _fraction(_bigrams(r_title), _bigrams(n_title)),
            _fraction(_bigrams(r_title), _bigrams(n_text)),
            float(lcs_title), lcs_title / max(1, len(r_title)),
            float(_longest_common_run(n_text, r_title)),
            float(len(r_terms)),
            _fraction(r_terms, context["text_terms"]),
            _fraction(r_terms, context["title_terms"]),
            _fraction(context["title_terms"], r_terms),
            float(sum(1 for t in context["key_terms"] if t in r_text_lower)),
            float(len(need.title)), float(len(need.text)), float(len(record.title)), float(len(record.text)),
            _field_agreement(need, record),
        ]
