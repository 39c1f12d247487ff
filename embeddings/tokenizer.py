"""Chinese tokenisation with jieba, a shipped domain dictionary and the boilerplate of both sides removed.

One instance per process (``get_tokenizer``): jieba's prefix dictionary takes about a second to build, and
a private ``jieba.Tokenizer`` keeps the global one untouched, so results do not depend on import order.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import jieba
import jieba.analyse

from data.lexicon import DOMAIN_TERMS, STOPWORDS

jieba.setLogLevel(logging.WARNING)

_TOKEN_OK = re.compile(r"[\w\u4e00-\u9fff]")
_NUMBER = re.compile(r"^[\d.%+\-]+$")


def _read_lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


class Tokenizer:
    """jieba with the domain dictionary; ``tokenize`` returns content words, lower-cased, no stop words."""

    def __init__(self, terms_path: Path = DOMAIN_TERMS, stopwords_path: Path = STOPWORDS, hmm: bool = False):
        # HMM new-word discovery glues verb-object pairs (提高产量) into one token; off keeps terms comparable.
        self.hmm = hmm
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()
        self.domain_terms: set[str] = set()
        for line in _read_lines(terms_path):
            parts = line.split()
            word = parts[0]
            freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
            tag = parts[2] if len(parts) > 2 else None
            self._jieba.add_word(word, freq, tag)
            self.domain_terms.add(word)
        self.stopwords: frozenset[str] = frozenset(_read_lines(stopwords_path))
        for phrase in self.stopwords:  # cut boilerplate phrases (需求内容, 本实用新型) whole, then drop them
            if len(phrase) >= 3:
                self._jieba.add_word(phrase, 50000)
        self._keywords = jieba.analyse.TFIDF()
        self._keywords.tokenizer = self._jieba
        self._keywords.stop_words = set(self._keywords.stop_words) | set(self.stopwords)
        self._lock = threading.Lock()  # jieba's cut is not documented as thread-safe
        # A query is tokenised for BM25, for its explanation and for the scores of matches outside a signal's
        # candidates; remembering recent texts makes that one jieba pass instead of three.
        self._tokenize_cached = lru_cache(maxsize=4096)(self._tokenize)

    def cut(self, text: str) -> list[str]:
        """Raw jieba segmentation (precise mode), no filtering."""
        with self._lock:
            return list(self._jieba.cut(text, HMM=self.hmm))

    def tokenize(self, text: str) -> list[str]:
        """Content tokens: no punctuation, no stop words, no bare numbers, single Han characters dropped."""
        return list(self._tokenize_cached(text))

    def _tokenize(self, text: str) -> tuple[str, ...]:
        tokens = []
        for token in self.cut(text):
            token = token.strip().lower()
            if not token or token in self.stopwords or not _TOKEN_OK.search(token) or _NUMBER.match(token):
                continue
            if len(token) == 1 and "\u4e00" <= token <= "\u9fff":
                continue
            tokens.append(token)
        return tuple(tokens)

    def word_frequencies(self) -> dict[str, int]:
        """jieba's dictionary with the domain terms added: word -> frequency (the static embedding's vocabulary)."""
        return {w: int(f) for w, f in self._jieba.FREQ.items() if f}

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        return [self.tokenize(text) for text in texts]

    def key_terms(self, text: str, top_k: int = 10) -> list[str]:
        """The most telling terms of a text, used to explain matches.

        jieba.analyse's TF-IDF weighting (its IDF table, as in ``extract_tags``) over this tokenizer's
        content tokens, so the domain dictionary and stop words apply and the text is cut only once.
        """
        freq: dict[str, int] = {}
        for token in self.tokenize(text):
            if len(token) >= 2:
                freq[token] = freq.get(token, 0) + 1
        idf, median = self._keywords.idf_freq, self._keywords.median_idf
        weights = {t: n * idf.get(t, median) for t, n in freq.items()}
        return sorted(weights, key=weights.__getitem__, reverse=True)[:top_k]


@lru_cache(maxsize=1)
def get_tokenizer() -> Tokenizer:
    """The process-wide tokenizer (built once)."""
    return Tokenizer()
