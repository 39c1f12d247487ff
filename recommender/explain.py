"""Why a match was made: the key terms of the query (jieba.analyse) that the matched text shares."""

from __future__ import annotations

from embeddings.tokenizer import Tokenizer, get_tokenizer


def shared_key_terms(query_text: str, matched_text: str, top_k: int = 12, tokenizer: Tokenizer | None = None,
                     query_terms: list[str] | None = None) -> list[str]:
    """Key terms of the query found in the matched text, most telling first."""
    terms = query_terms if query_terms is not None else (tokenizer or get_tokenizer()).key_terms(query_text, top_k)
    matched = matched_text.lower()
    return [t for t in terms if t in matched]
