"""Duplicate groups among one side's records, so a match list shows one piece of work once.

Two records are duplicates when their normalised titles are equal (NFKC, case folded, punctuation, symbols
and white space removed), or near-equal: the Jaccard similarity of their character bigram sets is at least
``threshold`` (0.84). Titles shorter than ``min_chars`` (6) normalised characters are never grouped: on a read
sample of bdci2019 pairs, 10 of 11 equal titles that short were generic names ("打印设备", "系统") that say
nothing about being one work. Candidates come from MinHash LSH (``datasketch``), so a new record is compared with a
handful of others, not with all; each candidate pair is then checked on the exact bigram sets, so the LSH's
false positives never join a group. Groups are the connected components of these pairs.

Why titles and not the dense vectors: the same work registered twice (patent and project, two institutions)
keeps its title nearly verbatim while abstracts differ or are missing (bdci2019 has titles only), and the
dense vectors put different works on one topic ("正极" vs "负极" materials) closer than a threshold can
separate; bigram Jaccard >= 0.84 tolerates a dropped character, a repeated word or a generic suffix ("技术",
"产品") on a ten-character title, not a two-character qualifier naming a different material (0.833, read as
different works every time). Precision on a read sample: eval/benchmarks/DUPLICATES.md.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

DUPLICATES_FILE = "duplicates.json"
THRESHOLD = 0.84
MIN_CHARS = 6
NUM_PERM = 64
_SEED = 21

__all__ = ["DUPLICATES_FILE", "MIN_CHARS", "THRESHOLD", "DuplicateGroups", "bigrams", "normalise_title"]


def normalise_title(text: str) -> str:
    """The title as compared: NFKC (full-width to half-width), case folded, without punctuation, symbols,
    separators or control characters."""
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] not in "PZSC")


def bigrams(normalised: str) -> frozenset[str]:
    """Character bigrams of a normalised title (the title itself when it has one character)."""
    if len(normalised) < 2:
        return frozenset([normalised]) if normalised else frozenset()
    return frozenset(normalised[i:i + 2] for i in range(len(normalised) - 1))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


class DuplicateGroups:
    """Exact and near duplicate groups over records' titles, kept in step with every add, update and delete."""

    def __init__(self, threshold: float = THRESHOLD, num_perm: int = NUM_PERM, min_chars: int = MIN_CHARS) -> None:
        self.threshold = threshold
        self.min_chars = min_chars
        self.num_perm = num_perm
        self._keys: dict[str, str] = {}  # id -> normalised title
        self._by_key: dict[str, set[str]] = {}  # normalised title -> ids
        self._near: dict[str, set[str]] = {}  # id -> ids of near (not exact) duplicates
        self._group: dict[str, str] = {}  # id -> group id (smallest member id), only ids in a group of 2+
        self._members: dict[str, list[str]] = {}  # group id -> sorted members
        self._lsh: Any = None  # built on the first change after a load

    # -- changes ------------------------------------------------------------------------------
    def build(self, items: Iterable[tuple[str, str]]) -> None:
        """Group these (id, title) pairs from scratch."""
        self._keys, self._by_key, self._near = {}, {}, {}
        self._lsh = self._new_lsh()
        self._add(list(items))
        self._components()

    def upsert(self, items: Iterable[tuple[str, str]]) -> None:
        """Add or replace (id, title) pairs; groups they join or leave are recomputed."""
        items = list(items)
        self._ensure_lsh()
        gone = self._remove([i for i, _ in items if i in self._keys])
        self._add(items)
        self._regroup([*gone, *(i for i, _ in items)])

    def delete(self, ids: Iterable[str]) -> None:
        self._ensure_lsh()
        self._regroup(self._remove([i for i in ids if i in self._keys]))

    def stage(self, items: Iterable[tuple[str, str]], deletes: Iterable[str] = ()) -> Callable[[], None]:
        """``delete`` then ``upsert``, with the costly part done now (the LSH after a load, the new titles'
        MinHashes); the returned commit applies it (``HybridIndex.stage``)."""
        items, deletes = list(items), list(deletes)
        self._ensure_lsh()
        keyed = [(doc_id, normalise_title(title)) for doc_id, title in items]
        hashes = self._minhashes([k for _, k in keyed])

        def commit() -> None:
            gone = self._remove([i for i in dict.fromkeys([*deletes, *(i for i, _ in items)]) if i in self._keys])
            self._add(items, (keyed, hashes))
            self._regroup([*gone, *(i for i, _ in items)])
        return commit

    def _new_lsh(self) -> Any:
        from datasketch import MinHashLSH  # deferred: only indexing needs it

        return MinHashLSH(threshold=self.threshold, num_perm=self.num_perm)

    def prepare(self) -> None:
        """Build the LSH now (it is built on the first change after a load otherwise)."""
        self._ensure_lsh()

    def _ensure_lsh(self) -> None:
        if self._lsh is None:  # built whole, then published: a reader never sees it half filled
            lsh = self._new_lsh()
            keys = list(self._keys.items())
            for (doc_id, _), minhash in zip(keys, self._minhashes([k for _, k in keys])):
                lsh.insert(doc_id, minhash)
            self._lsh = lsh

    def _minhashes(self, keys: Sequence[str]) -> list[Any]:
        from datasketch import LeanMinHash, MinHash

        sets = [[s.encode("utf-8") for s in sorted(bigrams(k))] for k in keys]
        return [LeanMinHash(m) for m in MinHash.bulk(sets, num_perm=self.num_perm, seed=_SEED)]

    def _add(self, items: list[tuple[str, str]], hashed: tuple[list[tuple[str, str]], list[Any]] | None = None) -> None:
        """Add (id, title) pairs (``hashed``: their keys and MinHashes, computed ahead by ``stage``)."""
        if hashed is None:
            keyed = [(doc_id, normalise_title(title)) for doc_id, title in items]
            hashed = (keyed, self._minhashes([k for _, k in keyed]))
        keyed, hashes = hashed
        for (doc_id, key), minhash in zip(keyed, hashes):
            self._keys[doc_id] = key
            self._by_key.setdefault(key, set()).add(doc_id)
            if self._groupable(key):
                mine = bigrams(key)
                for other in self._lsh.query(minhash):
                    other_key = self._keys.get(other)
                    if other != doc_id and other_key != key and self._is_near(mine, other_key):
                        self._near.setdefault(doc_id, set()).add(other)
                        self._near.setdefault(other, set()).add(doc_id)
            self._lsh.insert(doc_id, minhash)

    def _groupable(self, key: str | None) -> bool:
        return bool(key) and len(key) >= self.min_chars

    def _is_near(self, mine: frozenset[str], other_key: str | None) -> bool:
        """Whether a stored key is a near duplicate of a title with these bigrams (exact candidates included)."""
        return self._groupable(other_key) and _jaccard(mine, bigrams(other_key)) >= self.threshold

    def _remove(self, ids: list[str]) -> list[str]:
        for doc_id in ids:
            key = self._keys.pop(doc_id)
            self._by_key[key].discard(doc_id)
            if not self._by_key[key]:
                del self._by_key[key]
            for other in self._near.pop(doc_id, set()):
                self._near.get(other, set()).discard(doc_id)
            self._lsh.remove(doc_id)
        return ids

    def _regroup(self, touched: Iterable[str]) -> None:
        """Recompute only the groups of these ids (before and after a change): the components reached from
        them and from their old groups' members, by a walk over equal keys and near pairs. The same groups
        as ``_components``, in time proportional to the groups touched, not to the whole side (43 ms of
        interpreter time per write at 30,000 results)."""
        seeds: dict[str, None] = {}
        for doc_id in touched:
            seeds[doc_id] = None
            seeds.update(dict.fromkeys(self._members.get(self._group.get(doc_id, ""), ())))
        self._dissolve(seeds)  # first, all of them: a split group's old id may be one of its parts' new id
        seen: set[str] = set()
        for start in seeds:
            if start in seen:
                continue
            seen.add(start)
            component, stack = [], [start] if start in self._keys else []
            while stack:
                doc_id = stack.pop()
                component.append(doc_id)
                key = self._keys[doc_id]
                for other in (self._by_key[key] if self._groupable(key) else set()) | self._near.get(doc_id, set()):
                    if other not in seen and other in self._keys:
                        seen.add(other)
                        stack.append(other)
            self._dissolve(component)  # groups reached that no change touched lie wholly inside it
            if len(component) > 1:
                component.sort()
                self._members[component[0]] = component
                self._group.update(dict.fromkeys(component, component[0]))

    def _dissolve(self, ids: Iterable[str]) -> None:
        for doc_id in ids:
            old = self._group.pop(doc_id, None)
            if old is not None:
                for member in self._members.pop(old, ()):
                    self._group.pop(member, None)

    def _components(self) -> None:
        """Connected components of exact-title classes joined by near pairs (scipy on a sparse graph)."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        # only records with a duplicate are nodes: the rest are groups of one (a write at 30,000 records
        # recomputes a few hundred nodes, not 30,000)
        classes = [sorted(members) for key, members in self._by_key.items()
                   if self._groupable(key) and len(members) > 1]
        ids = list(dict.fromkeys([*(m for c in classes for m in c), *self._near,
                                  *(o for others in self._near.values() for o in others)]))
        position = {d: i for i, d in enumerate(ids)}
        rows: list[int] = []
        cols: list[int] = []
        for first, *rest in classes:
            rows += [position[first]] * len(rest)
            cols += [position[m] for m in rest]
        for doc_id, others in self._near.items():
            rows += [position[doc_id]] * len(others)
            cols += [position[o] for o in others]
        self._group, self._members = {}, {}
        if not rows:
            return
        n = len(ids)
        graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        _, labels = connected_components(graph, directed=False)
        by_label: dict[int, list[str]] = {}
        for doc_id, label in zip(ids, labels):
            by_label.setdefault(int(label), []).append(doc_id)
        for members in by_label.values():
            if len(members) > 1:
                members.sort()
                self._members[members[0]] = members
                self._group.update({m: members[0] for m in members})

    # -- reading ------------------------------------------------------------------------------
    def existing_duplicates(self, items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
        """For each (id, title) not yet grouped here, the stored records it would be grouped with (its own
        id excluded): what an upload reports before writing. Items without a duplicate are left out."""
        items = list(items)
        if not items or not self._keys:
            return {}
        self._ensure_lsh()
        found: dict[str, list[str]] = {}
        keyed = [(doc_id, normalise_title(title)) for doc_id, title in items]
        for (doc_id, key), minhash in zip(keyed, self._minhashes([k for _, k in keyed])):
            if not self._groupable(key):
                continue
            mine = bigrams(key)
            direct = set(self._by_key.get(key, ()))
            direct |= {o for o in self._lsh.query(minhash) if self._is_near(mine, self._keys[o])}
            members = {m for d in direct for m in self.members(d)} - {doc_id}
            if members:
                found[doc_id] = sorted(members)
        return found

    def group_of(self, doc_id: str) -> str:
        """The id of the group this record belongs to (its own id when it has no duplicate)."""
        return self._group.get(doc_id, doc_id)

    def members(self, doc_id: str) -> list[str]:
        """Every record of this record's group, itself included, sorted by id."""
        return list(self._members.get(self.group_of(doc_id), [doc_id]))

    def mapping(self) -> dict[str, str]:
        """Record id -> group id for every record in a group of two or more."""
        return dict(self._group)

    def groups(self) -> list[list[str]]:
        """The groups of two or more records."""
        return [list(m) for m in self._members.values()]

    def near_pairs(self) -> list[tuple[str, str]]:
        """Pairs joined by near (not exact) title similarity, each once."""
        return sorted({(a, b) if a < b else (b, a) for a, others in self._near.items() for b in others})

    def __len__(self) -> int:
        return len(self._keys)

    # -- persistence --------------------------------------------------------------------------
    def save(self, folder: str | Path) -> list[str]:
        """Write the titles' keys and the near pairs (the LSH is rebuilt from the keys on the next change)."""
        payload = {
            "threshold": self.threshold, "num_perm": self.num_perm, "min_chars": self.min_chars, "keys": self._keys,
            "near": [list(p) for p in self.near_pairs()],
        }
        (Path(folder) / DUPLICATES_FILE).write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        return [DUPLICATES_FILE]

    def load(self, folder: str | Path, titles: Mapping[str, str]) -> None:
        """Read what ``save`` wrote; an index folder saved before duplicates existed is grouped from ``titles``."""
        path = Path(folder) / DUPLICATES_FILE
        if not path.exists():
            self.build(titles.items())
            return
        payload = json.loads(path.read_text(encoding="utf-8"))
        self.threshold, self.num_perm = float(payload["threshold"]), int(payload["num_perm"])
        self.min_chars = int(payload.get("min_chars", 0))  # folders saved before the minimum grouped every title
        self._keys = dict(payload["keys"])
        self._by_key, self._near, self._lsh = {}, {}, None
        for doc_id, key in self._keys.items():
            self._by_key.setdefault(key, set()).add(doc_id)
        for a, b in payload["near"]:
            self._near.setdefault(a, set()).add(b)
            self._near.setdefault(b, set()).add(a)
        self._components()
