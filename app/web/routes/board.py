"""The triagist's capacity board ``/ui/board`` and the pages' live channel ``/ui/stream``.

The filters live in the query string, so a board can be bookmarked, reloaded and shared. Every
fragment a live update fetches is rendered by the same template as the full page.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from enum import StrEnum
from typing import Annotated, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Query, Request
from pydantic import ValidationError
from sse_starlette.sse import EventSourceResponse
from starlette.responses import RedirectResponse, Response

from app.audit.service import AuditContext
from app.auth import users as user_service
from app.capacity import board as board_service
from app.capacity.board import BoardQuery
from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType, Feature, Sex, TargetGroup
from app.errors import InvalidInput
from app.placement import views as placement_views
from app.principal import Principal
from app.realtime import service as realtime_service
from app.realtime.hub import Hub
from app.realtime.pages import page_stream
from app.reportnow import service as report_service
from app.reportnow.schemas import ReportRequestCreate
from app.web.deps import SESSION_COOKIE, TriagistUser, WebAudit, WebUser
from app.web.templating import render, translator

router = APIRouter(include_in_schema=False)

E = TypeVar("E", bound=StrEnum)
SESSION_RECHECK = 15.0
FILTER_KEYS = ("care_type", "target_group", "sex", "features", "subregion", "escalate", "near")


def _enums(request: Request, name: str, enum: type[E]) -> tuple[E, ...]:
    out: list[E] = []
    for value in request.query_params.getlist(name):
        if not value:
            continue
        try:
            member = enum(value)
        except ValueError:
            raise InvalidInput(
                f"Unknown {name} {value[:40]!r}.",
                errors=[{"pointer": f"query:{name}", "detail": "not a known value"}],
            ) from None
        if member not in out:
            out.append(member)
    return tuple(out)


def board_query(request: Request) -> BoardQuery:
    params = request.query_params
    sexes = _enums(request, "sex", Sex)
    subregion = (params.get("subregion") or "").strip()[:64] or None
    near = (params.get("near") or "").strip()[:100] or None
    return BoardQuery(
        care_types=_enums(request, "care_type", CareType),
        target_groups=_enums(request, "target_group", TargetGroup),
        sex=sexes[0] if sexes else None,
        features=_enums(request, "features", Feature),
        subregion=subregion,
        escalate=params.get("escalate") in ("1", "true", "on"),
        near=near,
    )


def filter_qs(request: Request) -> str:
    """The board's filters as a query string (for fragment URLs and links)."""
    return urlencode([(k, v) for k, v in request.query_params.multi_items() if k in FILTER_KEYS])


def _context(request: Request) -> tuple[Database, Settings]:
    return request.app.state.db, request.app.state.settings


async def _board(
    request: Request,
    person: Principal,
    ctx: AuditContext,
    *,
    report_error: str | None = None,
    status_code: int = 200,
) -> Response:
    db, settings = _context(request)
    q = board_query(request)
    now = utcnow()
    summary = await board_service.board_summary(db, person, now=now, settings=settings)
    units = await board_service.board_units(
        db, person, q, now=now, settings=settings, scopes=request.app.state.scope_resolver
    )
    async with db.sessionmaker() as session:
        requests = await report_service.open_requests(session, person, now=now)
        cases = await placement_views.open_cases(session, ctx, now=now)
    return render(
        request,
        "board/page.html",
        {
            "q": q,
            "view": summary,
            "units": units,
            "qs": filter_qs(request),
            "after": await realtime_service.latest_id(db),
            "care_types": list(CareType),
            "target_groups": list(TargetGroup),
            "features": list(Feature),
            "sexes": [Sex.MALE, Sex.FEMALE],
            "report_requests": requests,
            "cases": cases,
            "report_error": report_error,
            "asked": request.query_params.get("asked") == "1",
        },
        status_code=status_code,
    )


@router.get("/ui/board")
async def board_page(request: Request, person: TriagistUser, ctx: WebAudit) -> Response:
    return await _board(request, person, ctx)


@router.get("/ui/board/cases")
async def board_cases(request: Request, person: TriagistUser, ctx: WebAudit) -> Response:
    """The open cases with their owners, most in need of an owner first (live fragment)."""
    db, _ = _context(request)
    async with db.sessionmaker() as session:
        cases = await placement_views.open_cases(session, ctx, now=utcnow())
    return render(request, "board/cases.html", {"cases": cases})


@router.post("/ui/board/report-requests")
async def ask_to_report(request: Request, person: TriagistUser, ctx: WebAudit) -> Response:
    """Ask the providers of the board's care types (and a subregion) to report within N minutes:
    the service of ``POST /v1/report-requests``. The board's filters stay in the query string."""
    tr = translator(request)
    form = await request.form()
    db, _ = _context(request)
    subregion = str(form.get("subregion") or "").strip()
    try:
        body = ReportRequestCreate.model_validate(
            {
                "care_types": [str(c) for c in form.getlist("care_type") if c],
                "subregions": [subregion] if subregion else [],
                "within_minutes": str(form.get("within_minutes") or "").strip() or None,
                "message": str(form.get("message") or "").strip()[:500] or None,
            }
        )
        async with db.sessionmaker() as session:
            await report_service.create(session, person, body, now=utcnow())
            await session.commit()
    except ValidationError:
        message = tr("Give the minutes (1 to 10,080) and known care types.")
        return await _board(request, person, ctx, report_error=message, status_code=422)
    except InvalidInput as exc:
        return await _board(request, person, ctx, report_error=exc.detail, status_code=422)
    qs = filter_qs(request)
    return RedirectResponse(
        f"/ui/board?{qs + '&' if qs else ''}asked=1#report-now", status_code=303
    )


@router.get("/ui/board/summary")
async def board_summary(request: Request, person: TriagistUser) -> Response:
    db, settings = _context(request)
    view = await board_service.board_summary(db, person, now=utcnow(), settings=settings)
    return render(request, "board/summary.html", {"view": view, "qs": filter_qs(request)})


@router.get("/ui/board/units")
async def board_units(request: Request, person: TriagistUser) -> Response:
    db, settings = _context(request)
    units = await board_service.board_units(
        db,
        person,
        board_query(request),
        now=utcnow(),
        settings=settings,
        scopes=request.app.state.scope_resolver,
    )
    return render(request, "board/units.html", {"units": units, "qs": filter_qs(request)})


@router.get("/ui/board/units/{unit_id}")
async def board_unit(request: Request, unit_id: uuid.UUID, person: TriagistUser) -> Response:
    """One unit's row under the board's filters; empty when it no longer matches them."""
    db, settings = _context(request)
    units = await board_service.board_units(
        db,
        person,
        board_query(request),
        now=utcnow(),
        settings=settings,
        scopes=request.app.state.scope_resolver,
        unit_id=unit_id,
    )
    if not units.items:
        return Response(status_code=200, media_type="text/html")
    return render(request, "board/unit_row.html", {"u": units.items[0], "qs": filter_qs(request)})


class SessionWatch:
    """Whether a stream's session is still alive, without delaying any event for it.

    A session ended elsewhere (logout, expiry, revocation) ends the stream within about
    ``SESSION_RECHECK`` seconds. The check runs in the background, at a random phase per stream:
    hundreds of boards opened together must not all query at once, nor hold an event back.
    """

    def __init__(self, db: Database, settings: Settings, token: str) -> None:
        self.db = db
        self.settings = settings
        self.token = token
        self.valid = True
        self.due = time.monotonic() + random.uniform(0.5, 1.5) * SESSION_RECHECK  # noqa: S311
        self.task: asyncio.Task[None] | None = None

    async def _check(self) -> None:
        state = await user_service.resolve_session(self.db, self.token, settings=self.settings)
        self.valid = state is not None and not state.second_factor_pending

    async def still_valid(self) -> bool:
        now = time.monotonic()
        if now >= self.due and (self.task is None or self.task.done()):
            self.due = now + SESSION_RECHECK
            self.task = asyncio.create_task(self._check())
        return self.valid


@router.get("/ui/stream")
async def page_events(
    request: Request,
    person: WebUser,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", pattern=r"^[0-9]{1,18}$")
    ] = None,
    after: Annotated[int | None, Query(ge=0, le=10**18 - 1)] = None,
) -> Response:
    """Server-sent events for the open pages of a logged-in person (``app.realtime.pages``).

    The browser holds no key: the session cookie authenticates, and the stream ends when the
    session does (logout, expiry, revocation) so the reconnect meets the login."""
    hub: Hub = request.app.state.hub
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    resume = int(last_event_id) if last_event_id is not None else after
    watch = SessionWatch(db, settings, request.cookies.get(SESSION_COOKIE) or "")
    return EventSourceResponse(
        page_stream(db, hub, person, last_event_id=resume, still_valid=watch.still_valid),
        ping=settings.stream_heartbeat_seconds,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
