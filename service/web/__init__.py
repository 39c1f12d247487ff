"""The web workbench: server-rendered pages (FastAPI + Jinja2, a little htmx) for enterprises and brokers.

Served by the same app as the API, on the same database and live index, under ``/web``. Pages call the
same core functions the API routes call; they hold no business logic of their own.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from service.web.errors import install_web_errors
from service.web.templating import STATIC


def mount_web(app: FastAPI) -> None:
    """Add the workbench's pages, its static files and its HTML error pages to the app."""
    from service.web.routes import (
        account,
        admin,
        audit,
        campaigns,
        dashboard,
        feedback,
        needs,
        results,
        shortlist,
        upload,
    )

    install_web_errors(app)
    app.mount("/web/static", StaticFiles(directory=STATIC), name="web-static")
    app.include_router(account.root)
    for module in (account, dashboard, needs, results, shortlist, campaigns, feedback, upload, admin, audit):
        app.include_router(module.router)
