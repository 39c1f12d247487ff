"""Lexical signals: BM25 over tokens (bm25s's scores, kept incremental) and TF-IDF (scikit-learn).

Titles of research results are short and full of exact technical terms (碳化硅, 三元正极材料); these
signals catch the term matches that a small dense model misses, and they cost almost nothing to run. The
tokenizer is passed in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from recommender.filters import Metadata, ResultFilters
from recommender.signal import Commit, Hits, Signal, SlotTable, Texts, top_hits

TokenizeFn = Callable[[str], list[str]]


class BM25Signal(Signal):
    """Okapi BM25 over the tokens a tokenizer gives, kept as per-term postings so that a change costs only
    the changed documents' terms.

    Scores are bm25s's (its default Lucene variant: idf ``log(1 + (N - df + 0.5) / (df + 0.5))``, term weight
    ``tf / (tf + k1 (1 - b + b len / avglen))``; tested equal to ``bm25s.BM25`` over the live documents), but
    computed from the query's postings at search time rather than precomputed: bm25s bakes N, df and the
    average length into every stored score, so one new document meant rebuilding the whole index (0.7 s of
    interpreter time at 30,000 results, during which searches waited). Here an add or delete updates the
    counts and appends to the postings of its own terms (a few milliseconds), and the next search reads them.
    """

    def __init__(self, tokenize: TokenizeFn, name: str = "bm25", k1: float = 1.2, b: float = 0.75) -> None:
        self.name = name
        self.tokenize = tokenize
        self.k1, self.b = k1, b
        self._reset([], [])

    def _reset(self, ids: Sequence[str], tokens: list[list[str]]) -> None:
        self.slots = SlotTable()
        self.slots.reset(ids)
        self.tokens = tokens
        self._vocab: dict[str, int] = {}
        self._postings: list[tuple[np.ndarray, np.ndarray]] = []  # term -> (slots, term frequencies)
        self._df = np.zeros(0, dtype=np.int64)  # live documents holding each term
        self._lengths = np.zeros(0, dtype=np.float32)  # tokens per slot
        self._total = 0.0  # tokens in live documents
        self._alive = np.zeros(0, dtype=bool)
        self._lines: list[str] = []  # each slot's line in the tokens file, once saved
        self._index_rows(range(len(self.tokens)))

    def _counts(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """A document's term ids (new terms get one) and their frequencies."""
        counts: dict[int, int] = {}
        vocab = self._vocab
        for token in tokens:
            term = vocab.get(token)
            if term is None:
                term = vocab[token] = len(vocab)
            counts[term] = counts.get(term, 0) + 1
        return np.fromiter(counts, dtype=np.int64, count=len(counts)), \
            np.fromiter(counts.values(), dtype=np.float32, count=len(counts))

    def _index_rows(self, rows: Sequence[int]) -> None:
        """Add these slots (already in ``slots`` and ``tokens``) to the postings and statistics."""
        rows = list(rows)
        if not rows:
            return
        per_doc = [self._counts(self.tokens[r]) for r in rows]
        terms = np.concatenate([t for t, _ in per_doc]) if per_doc else np.zeros(0, dtype=np.int64)
        freqs = np.concatenate([f for _, f in per_doc]) if per_doc else np.zeros(0, dtype=np.float32)
        slots = np.repeat(np.asarray(rows, dtype=np.int64), [len(t) for t, _ in per_doc])
        grown = len(self._vocab) - len(self._postings)
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        self._postings.extend([empty] * grown)
        self._df = np.concatenate([self._df, np.zeros(grown, dtype=np.int64)])
        order = np.argsort(terms, kind="stable")
        terms, freqs, slots = terms[order], freqs[order], slots[order]
        unique, starts = np.unique(terms, return_index=True)
        ends = np.append(starts[1:], len(terms))
        for term, a, z in zip(unique.tolist(), starts.tolist(), ends.tolist()):
            old_slots, old_freqs = self._postings[term]
            self._postings[term] = (np.concatenate([old_slots, slots[a:z]]), np.concatenate([old_freqs, freqs[a:z]]))
        self._df[unique] += (ends - starts)
        size = max(rows) + 1
        if size > len(self._lengths):
            self._lengths = np.concatenate([self._lengths, np.zeros(size - len(self._lengths), dtype=np.float32)])
            self._alive = np.concatenate([self._alive, np.zeros(size - len(self._alive), dtype=bool)])
        lengths = np.array([len(self.tokens[r]) for r in rows], dtype=np.float32)
        self._lengths[rows] = lengths
        self._alive[rows] = True
        self._total += float(lengths.sum())

    def _unindex_rows(self, rows: Sequence[int]) -> None:
        """Take these slots out of the statistics (their postings stay, masked by ``_alive``)."""
        for r in rows:
            if self._alive[r]:
                terms = {self._vocab[t] for t in self.tokens[r]}
                if terms:
                    self._df[list(terms)] -= 1
                self._total -= float(self._lengths[r])
                self._alive[r] = False
            self.tokens[r] = []

    def fit(self, ids: Sequence[str], docs: Sequence[Texts], metadata: Metadata | None = None) -> None:
        self._reset(ids, [self.tokenize(d.text) for d in docs])

    def stage(
        self, ids: Sequence[str], docs: Sequence[Texts], metadata: Metadata | None = None, deletes: Sequence[str] = (),
    ) -> Commit:
        tokens = [self.tokenize(d.text) for d in docs]  # jieba: the costly part, done before the write lock
        return lambda: self._change(ids, tokens, deletes)

    def upsert(self, ids: Sequence[str], docs: Sequence[Texts], metadata: Metadata | None = None) -> None:
        self._change(ids, [self.tokenize(d.text) for d in docs], ())

    def _change(self, ids: Sequence[str], tokens: list[list[str]], deletes: Sequence[str]) -> None:
        self.delete([*deletes, *ids])
        rows = self.slots.append(list(ids))
        self.tokens.extend(tokens)
        self._index_rows(rows)

    def delete(self, ids: Sequence[str]) -> None:
        self._unindex_rows(self.slots.delete(ids))

    def _scores(self, query: str) -> np.ndarray:
        scores = np.zeros(len(self.slots.ids), dtype=np.float32)
        live = len(self.slots)
        if not live or self._total <= 0:
            return scores
        terms: dict[int, int] = {}
        for token in self.tokenize(query):  # a repeated query term counts once per occurrence, as in bm25s
            term = self._vocab.get(token)
            if term is not None:
                terms[term] = terms.get(term, 0) + 1
        norm = self.k1 * (1.0 - self.b) + (self.k1 * self.b / (self._total / live)) * self._lengths
        for term, times in terms.items():
            df = int(self._df[term])
            if df <= 0:
                continue
            slots, freqs = self._postings[term]
            idf = math.log(1.0 + (live - df + 0.5) / (df + 0.5))
            scores[slots] += np.float32(times * idf) * freqs / (freqs + norm[slots])
        return scores

    def search(self, queries: Sequence[Texts], depth: int, filters: ResultFilters | None = None) -> list[Hits]:
        out = []
        for q in queries:
            scores = self._scores(q.text)
            hits = top_hits(scores, self.slots, depth, self._alive)
            out.append([(d, s) for d, s in hits if s > 0])
        return out

    def score(self, queries: Sequence[Texts], ids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        out = []
        for q, doc_ids in zip(queries, ids):
            scores = self._scores(q.text)
            out.append(np.array([scores[self.slots.row[d]] if d in self.slots.row else 0.0 for d in doc_ids]))
        return out

    def save(self, folder: Path) -> list[str]:
        name = f"{self.name}.tokens.jsonl"
        lines = self._lines  # a slot's tokens never change, so its line is encoded once (for the next saves)
        for row in range(len(lines), len(self.slots.ids)):
            doc_id = self.slots.ids[row]
            lines.append(json.dumps([doc_id, self.tokens[row]], ensure_ascii=False) + "\n" if doc_id else "")
        with (folder / name).open("w", encoding="utf-8") as handle:
            handle.writelines(line for doc_id, line in zip(self.slots.ids, lines) if doc_id is not None)
        return [name]

    def load(self, folder: Path) -> None:
        ids, tokens, lines = [], [], []
        with (folder / f"{self.name}.tokens.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                doc_id, toks = json.loads(line)
                ids.append(doc_id)
                tokens.append(toks)
                lines.append(line if line.endswith("\n") else line + "\n")
        self._reset(ids, tokens)
        self._lines = lines  # written again as they are by the next save


class TfidfSignal(Signal):
    """TF-IDF cosine; new documents use the fitted vocabulary until the next fit (``techmatch reindex``).

    Rows added since the last merge sit in a small matrix of their own beside the main one (the vocabulary
    is frozen, so their scores compare as they are), and a delete only masks a row: a write costs its own
    rows, not a copy of the whole matrix (120 ms at 30,000 results). The rows are merged into the main
    matrix, built beside the live one before the write lock, once there are ``MERGE_ABOVE`` of them or a
    twentieth of the main matrix.
    """

    MERGE_ABOVE = 512

    def __init__(
        self, name: str, analyzer: str | TokenizeFn = "char", ngram_range: tuple[int, int] = (1, 3),
        preprocess: Callable[[str], str] | None = None, sublinear_tf: bool = True, min_df: int = 1,
    ) -> None:
        self.name = name
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.preprocess = preprocess
        self.sublinear_tf = sublinear_tf
        self.min_df = min_df
        self.slots = SlotTable()
        self.vectorizer: TfidfVectorizer | None = None
        self._vocabulary_json: str | None = None  # the saved vocabulary, encoded once per fit
        self._main = sp.csr_matrix((0, 0), dtype=np.float32)  # rows 0..m-1
        self._main_t = self._main.T.tocsr()  # its term-major copy, read by searches
        self._extra = sp.csr_matrix((0, 0), dtype=np.float32)  # rows m.. added since the last merge
        self._alive = np.zeros(0, dtype=bool)

    def _new_vectorizer(self) -> TfidfVectorizer:
        return TfidfVectorizer(
            analyzer=self.analyzer, ngram_range=self.ngram_range, preprocessor=self.preprocess,
            sublinear_tf=self.sublinear_tf, min_df=self.min_df, dtype=np.float32, lowercase=True,
        )

    def fit(self, ids: Sequence[str], docs: Sequence[Texts], metadata: Metadata | None = None) -> None:
        self.slots.reset(ids)
        self.vectorizer = self._new_vectorizer()
        self._vocabulary_json = None
        self._set_matrix(self.vectorizer.fit_transform([d.text for d in docs]))
        self._alive = self.slots.alive_mask()

    def _set_matrix(self, matrix: sp.spmatrix) -> None:
        """Keep the term-major copy too: ``query @ matrix.T`` would otherwise convert the whole matrix on
        every query (190 ms per query at 30,000 results; 10 ms with the copy)."""
        self._main, self._main_t, self._extra = self._merged(matrix.tocsr())

    def _merged(self, matrix: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
        return matrix, matrix.T.tocsr(), sp.csr_matrix((0, matrix.shape[1]), dtype=np.float32)

    @property
    def matrix(self) -> sp.csr_matrix:
        """Every slot's row (dead slots included), as one matrix: for saving and tests, not for searches."""
        return sp.vstack([self._main, self._extra]).tocsr() if self._extra.shape[0] else self._main

    def doc_rows(self, ids: Sequence[str]) -> sp.csr_matrix:
        """The TF-IDF rows of these stored documents, in order."""
        main = self._main.shape[0]
        rows = [self.slots.row[d] for d in ids]
        parts = [self._main[r] if r < main else self._extra[r - main] for r in rows]
        return sp.vstack(parts).tocsr() if parts else sp.csr_matrix((0, self._main.shape[1]), dtype=np.float32)

    def _transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        if self.vectorizer is None:
            raise RuntimeError(f"signal '{self.name}' is empty: fit it first")
        return self.vectorizer.transform(list(texts)).tocsr()

    def stage(
        self, ids: Sequence[str], docs: Sequence[Texts], metadata: Metadata | None = None, deletes: Sequence[str] = (),
    ) -> Commit:
        if self.vectorizer is None:
            return super().stage(ids, docs, metadata, deletes)
        rows = self._transform([d.text for d in docs]) if ids else None
        merged = None
        extra = self._extra.shape[0] + len(ids)
        if extra > max(self.MERGE_ABOVE, self._main.shape[0] // 20):  # built here, swapped in by the commit
            parts = [self._main, self._extra] + ([rows] if rows is not None else [])
            merged = self._merged(sp.vstack(parts).tocsr())

        def commit() -> None:
            self.delete([*deletes, *ids])
            if ids:
                self.slots.append(list(ids))
            if merged is not None:
                self._main, self._main_t, self._extra = merged
            elif rows is not None:
                self._extra = sp.vstack([self._extra, rows]).tocsr()
            self._alive = self.slots.alive_mask()
        return commit

    def upsert(self, ids: Sequence[str], docs: Sequence[Texts], metadata: Metadata | None = None) -> None:
        if self.vectorizer is None:
            self.fit(ids, docs)
            return
        self.stage(ids, docs, metadata)()

    def delete(self, ids: Sequence[str]) -> None:
        if self.slots.delete(ids):  # the row stays, masked, until the next fit
            self._alive = self.slots.alive_mask()

    def search(self, queries: Sequence[Texts], depth: int, filters: ResultFilters | None = None) -> list[Hits]:
        if not len(self.slots):
            return [[] for _ in queries]
        out = []
        for q in self._transform([q.text for q in queries]):
            # Only the query's own terms' postings are read: rows of the term-major matrix, summed with the
            # query's weights (1.5x faster than a sparse-by-sparse product, same scores).
            row = self._main_t[q.indices].T @ q.data if q.nnz else np.zeros(self._main_t.shape[1])
            if self._extra.shape[0]:
                row = np.concatenate([row, (self._extra @ q.T).toarray().ravel()])
            out.append([(d, s) for d, s in top_hits(row, self.slots, depth, self._alive) if s > 0])
        return out

    def score(self, queries: Sequence[Texts], ids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        q = self._transform([query.text for query in queries])
        out = []
        for i, doc_ids in enumerate(ids):
            present = [d for d in doc_ids if d in self.slots.row]
            vals = dict(zip(present, (q[i] @ self.doc_rows(present).T).toarray().ravel())) if present else {}
            out.append(np.array([vals.get(d, 0.0) for d in doc_ids], dtype=np.float32))
        return out

    def save(self, folder: Path) -> list[str]:
        assert self.vectorizer is not None
        live = np.flatnonzero(self._alive)
        matrix = self.matrix if len(live) == len(self._alive) else self.matrix[live].tocsr()
        # uncompressed: zlib took 8 s of the folder save at 30,000 results, writing the raw arrays 0.5 s
        sp.save_npz(folder / f"{self.name}.matrix.npz", matrix, compressed=False)
        np.save(folder / f"{self.name}.idf.npy", self.vectorizer.idf_)
        if self._vocabulary_json is None:  # fixed until the next fit: encoded once (1 s at 30,000 results)
            vocabulary = {k: int(v) for k, v in self.vectorizer.vocabulary_.items()}
            self._vocabulary_json = json.dumps(vocabulary, ensure_ascii=False)
        ids = json.dumps([self.slots.ids[i] for i in live.tolist()], ensure_ascii=False)
        (folder / f"{self.name}.state.json").write_text(f'{{"ids": {ids}, "vocabulary": {self._vocabulary_json}}}',
                                                        encoding="utf-8")
        return [f"{self.name}.matrix.npz", f"{self.name}.idf.npy", f"{self.name}.state.json"]

    def load(self, folder: Path) -> None:
        state = json.loads((folder / f"{self.name}.state.json").read_text(encoding="utf-8"))
        self.vectorizer = self._new_vectorizer()
        self._vocabulary_json = None
        self.vectorizer.vocabulary_ = state["vocabulary"]
        self.vectorizer.idf_ = np.load(folder / f"{self.name}.idf.npy")
        self._set_matrix(sp.load_npz(folder / f"{self.name}.matrix.npz"))
        self.slots.reset(state["ids"])
        self._alive = self.slots.alive_mask()
