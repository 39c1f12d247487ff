"""A static word-vector embedder distilled from e5-small, in the spirit of model2vec: a table lookup, no network.

model2vec's own distiller wants a Hugging Face hub model; this builds the same kind of model from the project's
e5 port, over the words the project's tokenizer produces (jieba + the domain lexicon):

1. every vocabulary word (the commonest words of jieba's dictionary, the domain lexicon and every single Han
   character of them, so a word outside the vocabulary falls back to its characters) is run *alone* through
   e5-small (passage role), one vector per word;
2. PCA reduces the vectors (384 -> ``dim``) and centres them: the common direction all words share carries no
   meaning and would make every text similar to every other;
3. each word vector is scaled by its SIF weight a / (a + p(word)), p from the dictionary's frequencies, so
   frequent words count little (Arora et al. 2017; model2vec weights tokens the same way).

A text's vector is the mean of its tokens' vectors, L2-normalised. Encoding is a tokenisation and a sum:
thousands of texts a second on one core, which is what makes it a fast first stage over full abstracts.

The model is a folder: ``vectors.npy`` (float32, one row per word, weights applied), ``vocab.json`` and
``info.json``, with ``manifest.json`` holding every file's sha256, checked before anything is read.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.base import Embedder, Role
from embeddings.manifest import MANIFEST, read_manifest, write_manifest
from embeddings.tokenizer import get_tokenizer

STATIC_KIND = "techmatch-static-embedding"
STATIC_FORMAT = 1
FILES = ("vectors.npy", "vocab.json", "info.json")
DEFAULT_VOCAB = 30000
DEFAULT_DIM = 256
SIF_A = 1e-4  # model2vec's default SIF coefficient
_HAN = re.compile(r"[\u4e00-\u9fff]")


class StaticModelError(ValueError):
    """A static model folder that must not be used: missing, damaged, edited or of another version."""


def jieba_vocabulary(size: int = DEFAULT_VOCAB, corpus: Iterable[str] = ()) -> dict[str, float]:
    """The ``size`` commonest words of the tokenizer's dictionary (jieba's plus the domain lexicon), every word
    the tokenizer finds in the ``corpus`` texts (the records to be indexed: technical words are rarely among a
    general dictionary's commonest), their characters, and each one's dictionary frequency (a word the
    dictionary lacks counts as a rare one): the vocabulary and word counts the distiller starts from."""
    tokenizer = get_tokenizer()
    freq = {w: float(f) for w, f in tokenizer.word_frequencies().items() if f > 0 and w.strip()}
    keep = tokenizer.tokenize  # only what the tokenizer can emit (stop words and punctuation never are)
    ranked = sorted(freq, key=lambda w: (-freq[w], w))
    words: dict[str, float] = {}
    for word in ranked:
        if len(words) >= size:
            break
        if keep(word) == [word.lower()]:
            words[word.lower()] = words.get(word.lower(), 0.0) + freq[word]
    # The lexicon's frequencies are boosts that make jieba keep a term whole, not counts: a domain term gets
    # the frequency of a rare dictionary word instead, so SIF weighs it as the telling word it is.
    rare = float(np.percentile(list(words.values()), 10)) if words else 1.0
    for term in sorted(tokenizer.domain_terms):
        if keep(term) == [term.lower()]:
            words[term.lower()] = rare
    lowered: dict[str, float] = {}
    for word, count in freq.items():
        lowered[word.lower()] = lowered.get(word.lower(), 0.0) + count
    for text in corpus:
        for token in keep(text):
            if token not in words:
                words[token] = lowered.get(token, rare)
    for char in sorted({c for w in list(words) for c in w if _HAN.match(c)}):
        words.setdefault(char, freq.get(char, 1.0))
    return words


def distil(
    encoder: Embedder, frequencies: Mapping[str, float], dim: int = DEFAULT_DIM, sif_a: float = SIF_A,
    progress: bool = True,
) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """(vocabulary, weighted word vectors, info) from an encoder and word frequencies (see the module doc)."""
    from sklearn.decomposition import PCA

    words = sorted(frequencies)
    if not words:
        raise StaticModelError("the vocabulary is empty: nothing to distil")
    start = time.perf_counter()
    raw = encoder.embed_passages(words, progress=progress)
    encode_seconds = time.perf_counter() - start
    dim = min(dim, raw.shape[1], len(words))
    reduced = PCA(n_components=dim, random_state=0).fit_transform(raw.astype(np.float64))
    counts = np.asarray([frequencies[w] for w in words], dtype=np.float64)
    p = counts / counts.sum()
    vectors = (reduced * (sif_a / (sif_a + p))[:, None]).astype(np.float32)
    info = {"teacher": encoder.name, "words": len(words), "dim": int(dim), "sif_a": sif_a,
            "teacher_dim": int(raw.shape[1]), "encode_seconds": round(encode_seconds, 1)}
    return words, vectors, info


def save_static(folder: str | Path, words: Sequence[str], vectors: np.ndarray, info: Mapping[str, Any]) -> Path:
    """Write the model folder and its checksummed manifest (the last file written)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "vectors.npy", np.asarray(vectors, dtype=np.float32), allow_pickle=False)
    (folder / "vocab.json").write_text(json.dumps(list(words), ensure_ascii=False), encoding="utf-8")
    (folder / "info.json").write_text(json.dumps(dict(info), ensure_ascii=False, indent=1), encoding="utf-8")
    write_manifest(folder, {"kind": STATIC_KIND, "format_version": STATIC_FORMAT}, FILES)
    return folder


def load_static(folder: str | Path) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """(vocabulary, vectors, info) from a folder written by ``save_static``; ``StaticModelError`` on any mismatch."""
    folder = Path(folder)
    read_manifest(folder, STATIC_KIND, STATIC_FORMAT, StaticModelError, "static embedding",
                  "build it with 'techmatch distil-static'", set(FILES))
    vectors = np.load(folder / "vectors.npy", allow_pickle=False)
    words = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    info = json.loads((folder / "info.json").read_text(encoding="utf-8"))
    if vectors.ndim != 2 or len(words) != len(vectors):
        raise StaticModelError(f"{folder}: {len(words)} words but vectors of shape {vectors.shape}; rebuild it")
    return words, vectors, info


class StaticEmbedder(Embedder):
    """Mean of SIF-weighted, PCA-reduced e5 word vectors over the project tokenizer's words (both roles alike)."""

    batch_size = 4096
    progress_threshold = 50000

    def __init__(self, folder: str | Path) -> None:
        words, self.vectors, self.info = load_static(folder)
        self.folder = Path(folder)
        self.vocab = {w: i for i, w in enumerate(words)}
        self.dim = int(self.vectors.shape[1])
        digest = json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))["files"]["vectors.npy"]
        self.name = f"static-{self.info.get('teacher', 'e5')}-{digest[:12]}"  # vectors differ by model: so do names
        self.tokenizer = get_tokenizer()

    def token_rows(self, text: str) -> list[int]:
        """Vocabulary rows of a text's tokens; a word outside the vocabulary counts as its known characters."""
        rows = []
        for token in self.tokenizer.tokenize(text):
            row = self.vocab.get(token)
            if row is not None:
                rows.append(row)
            else:
                rows += [self.vocab[c] for c in token if c in self.vocab]
        return rows

    def _encode_batch(self, texts: list[str], role: Role) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            rows = self.token_rows(text)
            if rows:
                out[i] = self.vectors[rows].sum(axis=0)
        return out
