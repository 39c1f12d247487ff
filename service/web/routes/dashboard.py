"""The broker's dashboard: the funnel, counts per field, the latest shortlist, what enterprises marked."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from service.api.deps import SessionDep
from service.core.dashboard import field_counts, funnel
from service.core.jobs import active_job
from service.core.workbench import recent_feedback, recent_interests
from service.web.auth import BrokerDep
from service.web.routes import web_router
from service.web.templating import render

router = web_router()


@router.get("/dashboard")
def dashboard_page(request: Request, session: SessionDep, found: BrokerDep) -> Response:
    stages = funnel(session)
    feedback, _ = recent_feedback(session, 0, 6)
    return render(request, "dashboard.html", nav="dashboard", funnel=stages,
                  fields=field_counts(session, stages.shortlist_job), running=active_job(session),
                  feedback=feedback, interests=recent_interests(session))
