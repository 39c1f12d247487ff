"""A persistent embedding cache keyed by model, role and text hash.

Rebuilding an index after an edit, or restarting the service, re-embeds only texts never seen before:
on 2 CPU cores embedding is by far the slowest step, so this is what makes rebuilds cheap.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embeddings.base import Embedder, Role


def text_key(model: str, role: Role, text: str) -> str:
    return hashlib.sha256(f"{model}\x1f{role}\x1f{text}".encode()).hexdigest()


class EmbeddingCache:
    """SQLite file of (key -> float32 vector); safe to share between processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=60)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, dim INTEGER, vec BLOB)")
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str], dim: int) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(f"SELECT key, dim, vec FROM vectors WHERE key IN ({marks})", chunk)
                for key, row_dim, blob in rows:
                    if row_dim == dim:
                        found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        with self._lock, self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO vectors (key, dim, vec) VALUES (?, ?, ?)",
                [(k, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class CachedEmbedder(Embedder):
    """Any embedder behind the cache: only texts missing from the cache reach the model."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache
        self.name = inner.name
        self.dim = inner.dim
        self.batch_size = inner.batch_size
        self.misses = 0

    def _encode_batch(self, texts: list[str], role: Role) -> np.ndarray:  # pragma: no cover - not used
        return self.inner._encode_batch(texts, role)

    def encode(self, texts: Sequence[str], role: Role, progress: bool | None = None) -> np.ndarray:
        texts = list(texts)
        keys = [text_key(self.inner.cache_key_name(role), role, t) for t in texts]
        found = self.cache.get_many(sorted(set(keys)), self.dim)
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in found}.items())
        if missing:
            self.misses += len(missing)
            vectors = self.inner.encode([t for _, t in missing], role, progress)
            fresh = {k: vectors[i] for i, (k, _) in enumerate(missing)}
            self.cache.put_many(fresh)
            found.update(fresh)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, key in enumerate(keys):
            out[i] = found[key]
        return out
