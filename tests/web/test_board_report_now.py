"""Report now on the triagist's board: the region's open requests with their progress, and the
form that asks (care types from the board's filter, a subregion, minutes); on both backends."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from app.reportnow.models import ReportRequest
from tests.factories import Seed, add_person
from tests.web.test_board_and_placement_pages import log_in, post


def progress(html: str) -> list[tuple[str, str, str]]:
    """(answered, targeted, overdue) of each open request shown, newest first."""
    return re.findall(
        r'data-report-request-id="[0-9a-f-]{36}" data-answered="(\d+)" data-targeted="(\d+)" '
        r'data-overdue="(true|false)"',
        html,
    )


async def test_triagist_asks_and_follows_the_answers(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    triagist = await add_person(db, Role.TRIAGIST, seed.organisations["rap"])
    await log_in(client, db, settings, triagist)
    board = await client.get("/ui/board", params={"care_type": "elv_high"})
    assert board.status_code == 200
    assert progress(board.text) == []
    assert "Geen openstaande meldverzoeken." in board.text
    assert 'action="/ui/board/report-requests?care_type=elv_high"' in board.text
    assert '<input type="hidden" name="care_type" value="elv_high">' in board.text
    assert "Nu melden vragen" in board.text
    english = await client.get("/ui/board", params={"lang": "en"})
    assert "Ask to report now" in english.text

    # Refusals are shown next to the form, with the board around them.
    zero = await post(
        client,
        "/ui/board/report-requests?care_type=elv_high",
        {"care_type": "elv_high", "within_minutes": "0"},
    )
    assert zero.status_code == 422
    assert 'id="report-now-error"' in zero.text
    nobody = await post(
        client,
        "/ui/board/report-requests",
        {"care_type": "ggz_crisis", "within_minutes": "30"},
    )
    assert nobody.status_code == 422
    assert "nobody to ask" in nobody.text
    forged = await client.post(
        "/ui/board/report-requests", data={"care_type": "elv_high", "within_minutes": "30"}
    )
    assert forged.status_code == 403  # no CSRF token

    asked = await post(
        client,
        "/ui/board/report-requests?care_type=elv_high",
        {"care_type": "elv_high", "subregion": "", "within_minutes": "30"},
    )
    assert asked.status_code == 303, asked.text
    assert asked.headers["location"] == "/ui/board?care_type=elv_high&asked=1#report-now"
    board = await client.get(asked.headers["location"].replace("#", "&lang=nl#"))
    assert progress(board.text) == [("0", "3", "false")]  # Leiden, Den Haag and Gouda
    assert "0 van 3 afdelingen" in board.text
    async with db.sessionmaker() as session:
        made = (await session.scalars(select(ReportRequest))).one()
    assert made.care_types == "elv_high"
    assert made.within_minutes == 30
    assert made.subregion_ids == ""

    grz = await post(
        client,
        "/ui/board/report-requests",
        {"care_type": "grz", "subregion": "leiden", "within_minutes": "15"},
    )
    assert grz.status_code == 303

    # The provider in Leiden reports its ELV-high unit: one answer to the first request.
    planner = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"])
    await log_in(client, db, settings, planner)
    reported = await post(
        client, f"/ui/units/{seed.units['leiden-elv-high']}/capacity", {"free": "1"}
    )
    assert reported.status_code == 303
    await log_in(client, db, settings, triagist)
    board = await client.get("/ui/board")
    assert progress(board.text) == [("0", "1", "false"), ("1", "3", "false")]

    # Past its deadline the ELV-high request is flagged overdue (text and icon).
    async with db.sessionmaker() as session:
        await session.execute(
            update(ReportRequest)
            .where(ReportRequest.id == made.id)
            .values(deadline_at=utcnow() - timedelta(minutes=5))
        )
        await session.commit()
    board = await client.get("/ui/board", params={"lang": "en"})
    assert progress(board.text) == [("0", "1", "false"), ("1", "3", "true")]
    assert "overdue" in board.text

    # The Leiden GRZ unit answers: a fully answered request leaves the list.
    await log_in(client, db, settings, planner)
    await post(client, f"/ui/units/{seed.units['leiden-grz']}/capacity", {"free": "2"})
    await log_in(client, db, settings, triagist)
    assert progress((await client.get("/ui/board")).text) == [("1", "3", "true")]

    # Only triagists ask.
    await log_in(client, db, settings, planner)
    refused = await post(
        client, "/ui/board/report-requests", {"care_type": "grz", "within_minutes": "30"}
    )
    assert refused.status_code == 403
