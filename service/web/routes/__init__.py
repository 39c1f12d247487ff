"""Workbench pages, one module per area: account (sign-in), needs, results, dashboard, shortlist, feedback, upload."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.web.csrf import csrf_protect


def web_router() -> APIRouter:
    """A router for pages: under /web, CSRF-checked on every unsafe method, left out of the API's schema."""
    return APIRouter(prefix="/web", dependencies=[Depends(csrf_protect)], include_in_schema=False)
