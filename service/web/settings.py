"""Workbench settings (pydantic-settings, ``TECHMATCH_WEB_*`` variables): how long a sign-in lasts, cookie policy."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TECHMATCH_WEB_", env_file=".env", extra="ignore")

    session_hours: float = Field(12.0, gt=0, le=24 * 30, description="a sign-in lasts this long")
    secure_cookies: Literal["auto", "always", "never"] = Field(
        "auto", description="mark cookies Secure: auto = when the request came over https (behind a proxy: "
                            "name it in TECHMATCH_TRUSTED_PROXIES so its X-Forwarded-Proto counts) or "
                            "TECHMATCH_HTTPS_ONLY is set")
