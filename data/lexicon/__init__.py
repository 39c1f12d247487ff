"""Lexicon files shipped with techmatch: the jieba domain dictionary and the stop-word list."""

from pathlib import Path

LEXICON_DIR = Path(__file__).resolve().parent
DOMAIN_TERMS = LEXICON_DIR / "domain_terms.txt"
STOPWORDS = LEXICON_DIR / "stopwords.txt"
