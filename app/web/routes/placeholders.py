"""Role home pages not built yet: a page that says so, for each role's landing address.

Registered after every real page, so a router that defines one of these paths wins; delete the
line here when its page lands.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.web.deps import AnalystUser, TriagistUser, WebUser
from app.web.i18n import N_
from app.web.templating import render

router = APIRouter(include_in_schema=False)


def _placeholder(request: Request, title: str) -> Response:
    return render(request, "placeholder.html", {"title": title})


@router.get("/ui/board")
async def board(request: Request, person: TriagistUser) -> Response:
    return _placeholder(request, N_("Board"))


@router.get("/ui/placements")
async def placements(request: Request, person: WebUser) -> Response:
    return _placeholder(request, N_("Placements"))


@router.get("/ui/kpis")
async def kpis(request: Request, person: AnalystUser) -> Response:
    return _placeholder(request, N_("KPIs"))
