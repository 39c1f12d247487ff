"""Milvus backend: vectors and their filter values in a Milvus collection (pymilvus ``MilvusClient``).

The same code serves every Milvus: a URI that ends in ``.db`` is a Milvus Lite file (the embedded engine
of the ``milvus-lite`` package, served from this process), ``http://host:19530`` a Milvus standalone or
distributed server (or a ``milvus-lite server`` shared by several processes). Upserts and deletes go
straight to Milvus; each vector's filter values (``recommender.filters.filter_values``) are scalar fields
beside it, so a filtered search is filtered inside Milvus (``filters_pushdown``). A saved folder holds
only a manifest that names the URI, the collection and the build (also a property of the collection), so
``load`` reconnects to the same data, and refuses a collection rebuilt by another index; on a Lite file,
which no other process can write, it also refuses one whose count changed since the save.

Milvus Lite (``milvus-lite`` 3, pure Python) serves one process per file; several processes share one
through ``milvus-lite server --data-dir FILE`` and an ``http://`` URI, as they would share a real server.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from recommender.ann.base import ANNIndex, IndexLoadError, VectorDatabaseError, write_manifest
from recommender.errors import UserError
from recommender.filters import FILTER_FIELDS, Metadata, ResultFilters
from recommender.settings import MILVUS_INDEX_TYPES as INDEX_TYPES
from recommender.settings import PipelineSettings

ID_FIELD, VECTOR_FIELD, TRL_FIELD = "id", "vector", "trl"
ID_MAX_LENGTH = 1024
# Filter values longer than this are stored as null: ResultFilters accepts at most 300 characters, so no
# filter can ask for them, and null never equals anything (as ``accepts`` decides for them).
TEXT_MAX_LENGTH = 1024
MAX_LIMIT = 16384  # Milvus's largest top-k (and number of queries) per search
BATCH = 2000  # rows per insert request
BUILD_PROPERTY = "techmatch.build"  # a collection property: which build of which folder it holds
_TEMP: dict[str, str] = {}
_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))  # backslash first


def is_server_uri(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "unix:"))


def temporary_lite_uri() -> str:
    """One Milvus Lite file per process for indexes nobody saves (``techmatch eval``), removed at exit."""
    if "uri" not in _TEMP:
        folder = tempfile.mkdtemp(prefix="techmatch-milvus-")
        _TEMP["uri"] = os.path.join(folder, "milvus.db")

        def _remove() -> None:  # runs before pymilvus's own exit hook (LIFO): stop the engine, then delete
            with contextlib.suppress(Exception):
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(_TEMP["uri"])
            shutil.rmtree(folder, ignore_errors=True)

        atexit.register(_remove)
    return _TEMP["uri"]


def string_literal(text: str) -> str:
    """A Milvus expression string literal (the escapes both Milvus and Milvus Lite read)."""
    for raw, escape in _ESCAPES:
        text = text.replace(raw, escape)
    return f'"{text}"'


def filter_expression(filters: ResultFilters | None) -> str:
    """The Milvus boolean expression of a ResultFilters ('' when no condition is set).

    A null field never satisfies a comparison in Milvus, which is what ``ResultFilters.accepts`` decides for
    a record without that field (or without an integer TRL).
    """
    if filters is None:
        return ""
    parts = [f"{name} == {string_literal(getattr(filters, name))}" for name in FILTER_FIELDS
             if getattr(filters, name) is not None]
    if filters.trl_min is not None:
        parts.append(f"{TRL_FIELD} >= {int(filters.trl_min)}")
    if filters.trl_max is not None:
        parts.append(f"{TRL_FIELD} <= {int(filters.trl_max)}")
    return " and ".join(parts)


@contextlib.contextmanager
def _milvus_call(what: str, uri: str) -> Iterator[None]:
    """Turn pymilvus's exceptions into a VectorDatabaseError that names the operation and the database."""
    from pymilvus.exceptions import MilvusException

    try:
        yield
    except MilvusException as exc:
        raise VectorDatabaseError(f"Milvus at {uri}: {what} failed: {getattr(exc, 'message', exc)}") from None


def connect(uri: str, token: str = "") -> Any:
    """A MilvusClient for a Lite file or a server, with a message that says what to do when it fails."""
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    if not is_server_uri(uri):
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    try:
        return MilvusClient(uri=uri, token=token, timeout=30)
    except MilvusException as exc:
        if not is_server_uri(uri):
            raise VectorDatabaseError(
                f"cannot open the Milvus Lite file {uri} ({getattr(exc, 'message', exc)}). Milvus Lite serves one "
                "process at a time: if another process has it open, stop it, or serve the file to every process "
                f"with 'milvus-lite server --data-dir {uri} --port 19530' and set "
                "TECHMATCH_MILVUS_URI=http://127.0.0.1:19530"
            ) from None
        raise VectorDatabaseError(
            f"cannot reach the Milvus server at {uri} ({getattr(exc, 'message', exc)}); is it running, and are "
            "TECHMATCH_MILVUS_URI and TECHMATCH_MILVUS_TOKEN right?"
        ) from None


class MilvusIndex(ANNIndex):
    """One Milvus collection: a VARCHAR primary key (the string id), the vector, and the filter values."""

    backend = "milvus"
    filters_pushdown = True
    shared = True  # the collection is Milvus's: every process that opens it sees the same vectors

    def __init__(
        self, dim: int, model: str, uri: str = "", collection: str = "techmatch", index_type: str = "FLAT",
        index_params: Mapping[str, Any] | None = None, search_params: Mapping[str, Any] | None = None,
        token: str = "",
    ) -> None:
        super().__init__(dim, model)
        if index_type not in INDEX_TYPES:
            raise ValueError(f"unknown Milvus index type '{index_type}' (use one of: {', '.join(INDEX_TYPES)})")
        self.temporary = not uri
        self.uri = uri or temporary_lite_uri()
        if not is_server_uri(self.uri):
            self.uri = os.path.abspath(self.uri)
        self.collection = collection
        self.index_type = index_type
        self.index_params = dict(index_params or {})
        self.search_params = dict(search_params or {})  # e.g. {"nprobe": 64} (IVF) or {"ef": 128} (HNSW)
        self.token = token
        self.build: str | None = None  # set when the collection is created: None means nothing indexed yet
        self._client: Any = None

    # -- connection ---------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.uri, self.token)
        return self._client

    def _call(self, what: str) -> contextlib.AbstractContextManager[None]:
        return _milvus_call(f"{what} on collection '{self.collection}'", self.uri)

    def _create(self) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(ID_FIELD, DataType.VARCHAR, is_primary=True, max_length=ID_MAX_LENGTH)
        schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=self.dim)
        for name in FILTER_FIELDS:
            schema.add_field(name, DataType.VARCHAR, max_length=TEXT_MAX_LENGTH, nullable=True)
        schema.add_field(TRL_FIELD, DataType.INT64, nullable=True)
        index_params = self.client.prepare_index_params()
        index_params.add_index(field_name=VECTOR_FIELD, index_type=self.index_type, metric_type="IP",
                               params=self.index_params)
        self.build = uuid.uuid4().hex
        with self._call("create"):
            if self.client.has_collection(self.collection):
                self.client.drop_collection(self.collection)
            # Strong consistency: a search sees every write acknowledged before it, from any client.
            self.client.create_collection(
                self.collection, schema=schema, index_params=index_params, consistency_level="Strong",
                properties={BUILD_PROPERTY: self.build, "techmatch.model": self.model},
            )

    # -- changes ------------------------------------------------------------------------------
    def _check(self, ids: Sequence[str], vectors: np.ndarray, metadata: Metadata | None) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of dimension {self.dim}, got shape {vectors.shape}")
        if len(ids) != len(vectors) or (metadata is not None and len(metadata) != len(ids)):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors"
                             + ("" if metadata is None else f" and {len(metadata)} metadata rows"))
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate ids in one batch")
        too_long = next((i for i in ids if len(i.encode("utf-8")) > ID_MAX_LENGTH), None)
        if too_long is not None:
            raise ValueError(f"id '{too_long[:60]}...' is longer than {ID_MAX_LENGTH} bytes (Milvus's key limit here)")
        return vectors

    @staticmethod
    def _row(doc_id: str, vector: list[float], meta: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {ID_FIELD: doc_id, VECTOR_FIELD: vector}
        for name in FILTER_FIELDS:
            text = meta.get(name)
            values[name] = None if text is None or len(str(text)) > TEXT_MAX_LENGTH else str(text)
        trl = meta.get(TRL_FIELD)
        values[TRL_FIELD] = trl if isinstance(trl, int) and not isinstance(trl, bool) else None
        return values

    def _write(self, ids: Sequence[str], vectors: np.ndarray, metadata: Metadata | None, upsert: bool) -> None:
        """Send rows in batches (built batch by batch: 800,000 rows as Python lists would take gigabytes)."""
        step = self.client.upsert if upsert else self.client.insert
        with self._call("upsert" if upsert else "insert"), tqdm(
            total=len(ids), desc="writing vectors to Milvus", unit="vector", disable=len(ids) < 50_000, mininterval=2,
        ) as bar:
            for start in range(0, len(ids), BATCH):
                stop = min(start + BATCH, len(ids))
                metas = metadata[start:stop] if metadata is not None else [{}] * (stop - start)
                step(self.collection, [self._row(i, v, m) for i, v, m in
                                       zip(ids[start:stop], vectors[start:stop].tolist(), metas)])
                bar.update(stop - start)

    def index(self, ids: Sequence[str], vectors: np.ndarray, metadata: Metadata | None = None) -> None:
        vectors = self._check(ids, vectors, metadata)
        self._create()
        self._write(ids, vectors, metadata, upsert=False)
        with self._call("flush"):
            self.client.flush(self.collection)  # seal the segments so the vector index is built over them
            self.client.load_collection(self.collection)

    def append(self, ids: Sequence[str], vectors: np.ndarray, metadata: Metadata | None = None) -> None:
        if self.build is None:
            self.index(ids, vectors, metadata)
            return
        self._write(ids, self._check(ids, vectors, metadata), metadata, upsert=True)

    def delete(self, ids: Sequence[str]) -> int:
        present = self.present(ids)
        if present:
            with self._call("delete"):
                self.client.delete(self.collection, ids=present)
        return len(present)

    # -- queries ------------------------------------------------------------------------------
    def _search_params(self, k: int) -> dict[str, Any]:
        params = dict(self.search_params)
        if self.index_type.startswith("HNSW"):
            params["ef"] = max(int(params.get("ef", 64)), k)  # Milvus requires ef >= top-k
        return {"metric_type": "IP", "params": params}

    def search(
        self, queries: np.ndarray, k: int, filters: ResultFilters | None = None
    ) -> list[list[tuple[str, float]]]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if self.build is None or k <= 0 or not len(queries):
            return [[] for _ in range(len(queries))]
        k = min(k, MAX_LIMIT)
        expression = filter_expression(filters)
        out: list[list[tuple[str, float]]] = []
        with self._call("search"):
            for start in range(0, len(queries), MAX_LIMIT):
                answer = self.client.search(
                    self.collection, data=queries[start:start + MAX_LIMIT].tolist(), limit=k, filter=expression,
                    search_params=self._search_params(k), anns_field=VECTOR_FIELD, output_fields=[],
                )
                # the hits' id and distance columns: reading them whole skips building a dict per hit (13 ms of
                # the 42 ms a top-200 search took on Milvus Lite, 7,324 vectors)
                out.extend(list(zip(map(str, hits.ids), map(float, hits.distances))) for hits in answer)
        return out

    def _get(self, ids: Sequence[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        if self.build is None or not ids:
            return found
        unique = list(dict.fromkeys(ids))
        with self._call("get"):
            for start in range(0, len(unique), 1000):
                for row in self.client.get(self.collection, ids=unique[start:start + 1000], output_fields=fields):
                    found[str(row[ID_FIELD])] = row
        return found

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        rows = self._get(ids, [VECTOR_FIELD])
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for row, doc_id in enumerate(ids):
            if doc_id not in rows:
                raise KeyError(doc_id)
            out[row] = rows[doc_id][VECTOR_FIELD]
        return out

    def present(self, ids: Sequence[str]) -> list[str]:
        found = self._get(ids, [ID_FIELD])
        return [i for i in ids if i in found]

    @property
    def ids(self) -> list[str]:
        if self.build is None:
            return []
        out: list[str] = []
        with self._call("list ids"):
            iterator = self.client.query_iterator(self.collection, batch_size=5000, output_fields=[ID_FIELD])
            while batch := iterator.next():
                out.extend(str(row[ID_FIELD]) for row in batch)
            iterator.close()
        return out

    def __len__(self) -> int:
        if self.build is None:
            return 0
        with self._call("count"):
            return int(self.client.query(self.collection, output_fields=["count(*)"])[0]["count(*)"])

    def __contains__(self, doc_id: str) -> bool:
        return bool(self.present([doc_id]))

    def close(self) -> None:
        """Disconnect; for a Milvus Lite file also stop its engine in this process, so another may open it."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        if not is_server_uri(self.uri):
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self.uri)

    # -- persistence --------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        if self.temporary:
            raise UserError(
                "this Milvus index lives in a temporary Milvus Lite file that is removed when the process ends; "
                "set TECHMATCH_MILVUS_URI (a path ending in .db, or http://host:19530) to keep it"
            )
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.build is None:
            self.index([], np.zeros((0, self.dim), dtype=np.float32))
        with self._call("flush"):
            self.client.flush(self.collection)  # Milvus Lite: written to its segment files, not only its log
        info: dict[str, Any] = {
            "kind": "ann", "backend": self.backend, "model": self.model, "dim": self.dim, "count": len(self),
            "uri": self.uri, "collection": self.collection, "build": self.build, "index_type": self.index_type,
            "index_params": self.index_params, "search_params": self.search_params,
        }
        if not is_server_uri(self.uri):  # a Lite file inside the index folder moves with it
            info["uri_relative"] = os.path.relpath(self.uri, folder.resolve())
        write_manifest(folder, info, [])

    @classmethod
    def load(cls, folder: Path, info: dict[str, Any]) -> MilvusIndex:
        uri = str(info["uri"])
        relative = info.get("uri_relative")
        if relative and (Path(folder).resolve() / relative).exists():
            uri = str((Path(folder).resolve() / relative).resolve())
        elif not is_server_uri(uri) and not Path(uri).exists():
            raise IndexLoadError(f"{folder}: its Milvus Lite file {uri} is missing; rebuild with 'techmatch index'")
        settings = PipelineSettings()  # the token is never saved; search parameters set there win (a query knob)
        self = cls(
            int(info["dim"]), info["model"], uri, info["collection"], info.get("index_type", "FLAT"),
            info.get("index_params"), settings.milvus_search_params or info.get("search_params"),
            token=settings.milvus_token,
        )
        with self._call("describe"):
            if not self.client.has_collection(self.collection):
                raise IndexLoadError(
                    f"{folder}: Milvus at {uri} has no collection '{self.collection}' (dropped, or another database?); "
                    "rebuild with 'techmatch index'"
                )
            described = self.client.describe_collection(self.collection)
        build = (described.get("properties") or {}).get(BUILD_PROPERTY)
        if build != info.get("build"):
            raise IndexLoadError(
                f"{folder}: Milvus collection '{self.collection}' at {uri} was rebuilt by another index since this "
                "folder was saved; rebuild this folder, or give each index its own TECHMATCH_MILVUS_COLLECTION"
            )
        dims = [f.get("params", {}).get("dim") for f in described.get("fields", []) if f.get("name") == VECTOR_FIELD]
        if not dims or int(dims[0]) != self.dim:
            raise IndexLoadError(f"{folder}: Milvus collection dimension {dims} does not match manifest {self.dim}")
        self.build = build
        with self._call("load"):
            self.client.load_collection(self.collection)
        # A Lite file is this folder's alone, so a count that differs means a change the folder never saw. A
        # server's collection is shared: other processes' writes since the save are expected, not damage.
        if not is_server_uri(uri) and len(self) != int(info.get("count", -1)):
            raise IndexLoadError(
                f"{folder}: damaged index (Milvus collection '{self.collection}' holds {len(self)} vectors, the "
                f"folder was saved with {info.get('count')}); rebuild with 'techmatch index'"
            )
        return self
