"""The API's documentation pages (Swagger UI at /docs, ReDoc at /redoc) under a Content-Security-Policy of
their own: FastAPI's pages load their bundles from a CDN and start them with a short inline script, which
this policy allows by its hash (never 'unsafe-inline' for scripts). Replaces FastAPI's own docs routes."""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.responses import HTMLResponse

CDN = "https://cdn.jsdelivr.net"
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def docs_policy(html: str) -> str:
    """The page's policy: the CDN's scripts and this page's own inline scripts (by sha256), nothing else."""
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
                      for body in INLINE_SCRIPT.findall(html))
    return "; ".join((
        "default-src 'self'", f"script-src 'self' {CDN} {hashes}".strip(),
        f"style-src 'self' {CDN} https://fonts.googleapis.com 'unsafe-inline'",
        f"img-src 'self' data: {CDN} https://fastapi.tiangolo.com", "font-src 'self' https://fonts.gstatic.com",
        "worker-src 'self' blob:", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'",
        "object-src 'none'",
    ))


def _with_policy(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = docs_policy(response.body.decode())
    return response


def add_docs_routes(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Swagger UI, its OAuth2 redirect page and ReDoc, as FastAPI serves them, each with its policy."""
    redirect_url = f"{docs_url}/oauth2-redirect"

    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return _with_policy(get_swagger_ui_html(openapi_url=root + (app.openapi_url or ""),
                                                title=f"{app.title} - Swagger UI",
                                                oauth2_redirect_url=root + redirect_url))

    async def oauth2_redirect(_: Request) -> HTMLResponse:
        return _with_policy(get_swagger_ui_oauth2_redirect_html())

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return _with_policy(get_redoc_html(openapi_url=root + (app.openapi_url or ""), title=f"{app.title} - ReDoc"))

    app.add_route(docs_url, swagger, include_in_schema=False)
    app.add_route(redirect_url, oauth2_redirect, include_in_schema=False)
    app.add_route(redoc_url, redoc, include_in_schema=False)
