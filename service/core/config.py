"""Service settings (pydantic-settings, TECHMATCH_* variables): where data lives and the documented limits.

The embedded default (a SQLite file and a FAISS folder under ``var/techmatch``) runs anywhere; an
operator switches to PostgreSQL by setting ``TECHMATCH_DATABASE_URL=postgresql+psycopg://...``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recommender.settings import PipelineSettings

DEFAULT_HOME = Path("var") / "techmatch"

# Documented request limits (README, "Limits and errors"): anything larger gets a 4xx that names the limit.
MAX_TEXT_CHARS = 20_000  # title + description/abstract of one record, or one free-text query
MAX_TITLE_CHARS = 500
MAX_KEYWORD_CHARS = 100  # one keyword (at most 100 of them)
MAX_OFFSET = 1_000_000_000  # paging: beyond any table here, and far inside what SQLite and PostgreSQL take
MAX_ID_CHARS = 200
MAX_NOTE_CHARS = 2_000
MAX_K = 100
MAX_PAGE_SIZE = 500
MAX_BULK_RECORDS = 5_000


class ServiceSettings(BaseSettings):
    """Everything the HTTP service needs to start; the matching pipeline keeps its own settings."""

    model_config = SettingsConfigDict(env_prefix="TECHMATCH_", env_file=".env", extra="ignore")

    database_url: str = Field("", description="SQLAlchemy URL; empty: a SQLite file under home")
    home: Path = Field(DEFAULT_HOME, description="folder for the SQLite file and the index")
    index_dir: Path | None = Field(None, description="FAISS/index folder; default: <home>/index")
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="largest accepted upload or JSON body")
    batch_queries: bool = Field(True, description="rank concurrent unfiltered match requests in one index call")
    parallel_batches: int | None = Field(
        None, ge=1, le=64, description="batches of searches run at once; default: one per two cores")
    save_interval: float = Field(
        5.0, ge=0.0, le=3600.0,
        description="seconds between background saves of the index folder while changes are pending "
                    "(the database is the truth; the folder only speeds up a restart)")
    freeze_heap: bool = Field(
        True, description="keep what is loaded at startup out of the garbage collector's full passes, which "
                          "otherwise stall every search for 0.4-0.85 s at 30,000 results (service/ops/heap.py)")
    save_every: int = Field(1000, ge=1, description="save the index folder sooner once this many records changed")
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    review_hold_seconds: float = Field(
        300.0, ge=5.0, le=86400.0,
        description="how long a result shown to one broker of a review campaign is held from the others")
    # the throttle on refused sign-ins and keys (service/core/throttle.py): failures within a sliding window
    signin_window_seconds: float = Field(900.0, gt=0, description="sliding window of the sign-in throttle")
    signin_max_per_account: int = Field(10, ge=1, description="refused sign-ins of one account in the window")
    signin_max_per_address: int = Field(50, ge=1, description="refused sign-ins from one address in the window")
    key_failures_window_seconds: float = Field(300.0, gt=0, description="window of the API key throttle")
    key_failures_max_per_address: int = Field(
        300, ge=1, description="refused API keys from one address in the window before it answers 429")

    # transport and operations (issue 23, service/ops): behind a TLS proxy, and what operators read
    trusted_proxies: str = Field(
        "", description="reverse proxies whose X-Forwarded-For/-Proto are believed: comma-separated addresses or "
                        "CIDR ranges, '*' for any; empty (default): none, the headers are ignored")
    https_only: bool = Field(
        False, description="the service is reached over https only (a TLS proxy in front): Secure cookies and "
                           "HSTS on every response, whatever scheme the request arrived with")
    hsts_seconds: int = Field(31_536_000, ge=0, description="Strict-Transport-Security max-age (0: no header)")
    log_json: bool = Field(False, description="log JSON lines with the request id, one access line a request")

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:/// or postgresql+psycopg:// URL")
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'techmatch.db').resolve()}"

    @property
    def resolved_index_dir(self) -> Path:
        return self.index_dir or self.home / "index"
