"""The board and placement pages over HTTP (no browser): what they show, who may see them, what
they log, and the placement workflow through the forms; on both backends."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from app.audit.models import AuditLog
from app.auth import users as user_service
from app.config import Settings
from app.db import Database
from app.enums import Role
from tests.api.test_triage import ELV_HIGH
from tests.factories import Person, Seed, add_person

CSRF = "t" * 32


async def log_in(client: httpx.AsyncClient, db: Database, settings: Settings, who: Person) -> None:
    async with db.sessionmaker() as session:
        user = await user_service.user_by_email(session, who.email)
    assert user is not None
    token = await user_service.start_session(
        db, user, client_address="127.0.0.1", settings=settings, second_factor_done=True
    )
    client.cookies.clear()
    client.cookies.set("jp_session", token)
    client.cookies.set("jp_csrf", CSRF)


async def post(client: httpx.AsyncClient, url: str, data: dict[str, Any]) -> httpx.Response:
    return await client.post(url, data={**data, "csrf_token": CSRF})


def units_shown(html: str) -> dict[str, int]:
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r'data-unit-id="([0-9a-f-]{36})" data-available="(\d+)"', html)
    }


async def audit(db: Database, event_code: str) -> list[AuditLog]:
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditLog).where(AuditLog.event_code == event_code).order_by(AuditLog.id)
        )
        return list(rows.all())


async def test_board_shows_units_with_hooks_filters_and_refusals(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    triagist = await add_person(db, Role.TRIAGIST, seed.organisations["rap"], name="Tessa Triage")
    await log_in(client, db, settings, triagist)
    r = await client.get("/ui/board")
    assert r.status_code == 200, r.text
    shown = units_shown(r.text)
    u = seed.units
    assert shown == {
        str(u["leiden-elv-high"]): 2,
        str(u["den-haag-elv-high"]): 3,
        str(u["gouda-elv-high"]): 1,
        str(u["leiden-grz"]): 4,
    }
    assert 'sse-connect="/ui/stream?after=' in r.text
    assert 'data-care-type="elv_high" data-subregion="leiden" data-available="2"' in r.text
    # Dutch first: the page speaks Dutch without a choice, English on request
    assert "Capaciteitsoverzicht" in r.text
    english = await client.get("/ui/board?lang=en")
    assert "Available places per care type and subregion" in english.text

    grz = await client.get("/ui/board", params={"care_type": "grz"})
    assert units_shown(grz.text) == {str(u["leiden-grz"]): 4}
    isolation = await client.get("/ui/board/units", params={"features": "isolation"})
    assert units_shown(isolation.text) == {str(u["den-haag-elv-high"]): 3}
    bad = await client.get("/ui/board", params={"care_type": "spa"})
    assert bad.status_code == 422
    assert "text/html" in bad.headers["content-type"]

    # one row, re-fetched by the live update, follows a new report
    provider = {"Authorization": f"Bearer {seed.keys['provider']}"}
    put = await client.put(
        f"/v1/units/{u['leiden-elv-high']}/capacity", json={"free": 0}, headers=provider
    )
    assert put.status_code == 200, put.text
    row = await client.get(f"/ui/board/units/{u['leiden-elv-high']}")
    assert units_shown(row.text) == {str(u["leiden-elv-high"]): 0}
    gone = await client.get(f"/ui/board/units/{u['leiden-elv-high']}", params={"care_type": "grz"})
    assert gone.status_code == 200
    assert gone.text == ""

    planner = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"])
    await log_in(client, db, settings, planner)
    assert (await client.get("/ui/board")).status_code == 403


async def test_referral_to_acceptance_through_the_pages(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    desk = await add_person(db, Role.REFERRER, seed.organisations["hospital"], name="Dirk Desk")
    await log_in(client, db, settings, desk)
    form = await client.get("/ui/placements/new")
    assert form.status_code == 200
    refused = await post(
        client, "/ui/placements/new", {"patient_identifier": "x y", "birth_year": "19"}
    )
    assert refused.status_code == 422
    assert "field-error" in refused.text
    created = await post(
        client,
        "/ui/placements/new",
        {
            "patient_identifier": "999990123",
            "birth_year": "1938",
            "sex": "female",
            "origin_setting": "hospital_ward",
            "medically_ready_at": "2026-12-04T08:30",
            "care_type": "elv_high",
            "target_group": "somatic",
            "urgency_code": "U3",
            "subregion": "leiden",
            "consent": "1",
        },
    )
    assert created.status_code == 303, created.text
    pid = uuid.UUID(created.headers["location"].split("/")[3].split("?")[0])
    page = await client.get(f"/ui/placements/{pid}")
    assert page.status_code == 200
    assert "999990123" not in page.text  # only the pseudonymous key is shown
    logged = await audit(db, "placement.page")
    assert [(r.object_id, r.user_display.split(" <")[0]) for r in logged] == [
        (str(pid), "Dirk Desk")
    ]
    desk_list = await client.get("/ui/placements")
    assert f'data-placement-id="{pid}" data-state="requested"' in desk_list.text

    triagist = await add_person(db, Role.TRIAGIST, seed.organisations["rap"])
    await log_in(client, db, settings, triagist)
    queue = await client.get("/ui/placements")
    assert f'data-placement-id="{pid}" data-state="requested"' in queue.text
    found = await client.get("/ui/placements", params={"q": "999990123"})
    assert str(pid) in found.text
    partial = await post(
        client,
        f"/ui/placements/{pid}/triage/preview",
        {"urgency_level": "3", "q_physician_assessed": "true", "q_acute_psychiatry": "false"},
    )
    assert 'data-question="needs_specialist_care"' in partial.text
    answers = {f"q_{k}": str(v).lower() for k, v in ELV_HIGH.items()}
    done = await post(
        client, f"/ui/placements/{pid}/triage/preview", {"urgency_level": "3", **answers}
    )
    assert 'data-open-questions="0"' in done.text
    triaged = await post(client, f"/ui/placements/{pid}/triage", answers)
    assert triaged.status_code == 303, triaged.text
    page = await client.get(f"/ui/placements/{pid}")
    assert 'data-testid="state"' in page.text
    assert f'data-unit-id="{seed.units["leiden-elv-high"]}"' in page.text
    held = await post(
        client, f"/ui/placements/{pid}/hold", {"unit_id": str(seed.units["leiden-elv-high"])}
    )
    assert held.status_code == 303, held.text
    again = await post(
        client, f"/ui/placements/{pid}/hold", {"unit_id": str(seed.units["leiden-grz"])}
    )
    assert again.status_code == 409  # shown on the page, not a crash
    assert 'data-testid="error"' in again.text

    outsider = await add_person(
        db, Role.PROVIDER, seed.organisations["vvt-den-haag"], name="Olga Out"
    )
    await log_in(client, db, settings, outsider)
    denied = await client.get(f"/ui/placements/{pid}")
    assert denied.status_code == 403
    assert "text/html" in denied.headers["content-type"]
    refused_rows = [r for r in await audit(db, "placement.page") if r.outcome == "failure"]
    assert [(r.object_id, r.user_display.split(" <")[0]) for r in refused_rows] == [
        (str(pid), "Olga Out")
    ]
    assert (await post(client, f"/ui/placements/{pid}/accept", {})).status_code == 403

    planner = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"])
    await log_in(client, db, settings, planner)
    offer = await client.get(f"/ui/placements/{pid}")
    assert 'data-action="accept"' in offer.text
    accepted = await post(client, f"/ui/placements/{pid}/accept", {})
    assert accepted.status_code == 303, accepted.text
    timeline = await client.get(f"/ui/placements/{pid}")
    events = re.findall(r'<li data-event="([a-z_]+)"', timeline.text)
    assert events == [
        "request_created",
        "medically_ready",
        "triaged",
        "offer_sent",
        "offer_accepted",
    ]


async def test_a_stream_learns_its_session_ended_without_holding_events_back(
    db: Database, settings: Settings, seed: Seed
) -> None:
    from app.web.routes.board import SessionWatch

    person = await add_person(db, Role.TRIAGIST, seed.organisations["rap"])
    async with db.sessionmaker() as session:
        user = await user_service.user_by_email(session, person.email)
    assert user is not None
    token = await user_service.start_session(
        db, user, client_address=None, settings=settings, second_factor_done=True
    )
    watch = SessionWatch(db, settings, token)

    def pending() -> asyncio.Task[None]:
        assert watch.task is not None
        return watch.task

    assert await watch.still_valid()  # not due yet: no query at all
    assert watch.task is None
    watch.due = 0.0
    assert await watch.still_valid()  # due: checked in the background, the answer is not awaited
    await pending()
    assert watch.valid
    await user_service.end_session(db, token)
    watch.due = 0.0
    assert await watch.still_valid()  # the last known answer, while the check runs
    await pending()
    assert not await watch.still_valid()
