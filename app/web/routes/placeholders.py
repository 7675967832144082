"""Role home pages not built yet: a page that says so, for each role's landing address.

Registered after every real page, so a router that defines one of these paths wins; delete the
line here when its page lands.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.web.deps import AdminUser
from app.web.i18n import N_
from app.web.templating import render

router = APIRouter(include_in_schema=False)


def _placeholder(request: Request, title: str) -> Response:
    return render(request, "placeholder.html", {"title": title})


@router.get("/ui/admin")
async def admin(request: Request, person: AdminUser) -> Response:
    return _placeholder(request, N_("Administration"))
