"""Units closed to admissions on the pages: the provider closes and reopens its unit from
``/ui/units`` (the service of ``PUT /v1/units/{id}/status``), the triagist's board shows a closed
unit with its reason and expected end after the open ones; on both backends."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx

from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from app.web.pagekit import TZ
from tests.conftest import auth
from tests.factories import Seed, add_person
from tests.web.test_board_and_placement_pages import log_in, post


def board_rows(html: str) -> list[tuple[str, str, str]]:
    """(unit id, places that can be held, accepting) of each board row, in the page's order."""
    return re.findall(
        r'data-unit-id="([0-9a-f-]{36})" data-available="(\d+)" data-freshness="[a-z]+" '
        r'data-accepting="(true|false)"',
        html,
    )


def row_of(html: str, unit: object) -> str:
    found = re.search(rf'<tr id="unit-{unit}".*?</tr>', html, re.S)
    assert found is not None
    return found.group(0)


async def accepting(client: httpx.AsyncClient, seed: Seed, unit: object) -> bool:
    r = await client.get(f"/v1/units/{unit}/status", headers=auth(seed.keys["triagist"]))
    assert r.status_code == 200, r.text
    return bool(r.json()["accepting"])


async def test_provider_closes_and_reopens_and_the_board_shows_why(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    unit = seed.units["leiden-elv-high"]
    planner = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"], name="Pien")
    await log_in(client, db, settings, planner)
    page = await client.get("/ui/units")
    assert f'action="/ui/units/{unit}/status"' in page.text
    assert 'data-action="close"' in page.text

    # "other" without an explanation is refused next to the form; nothing changes.
    refused = await post(
        client, f"/ui/units/{unit}/status", {"accepting": "false", "reason": "other"}
    )
    assert refused.status_code == 422
    assert f'id="status-{unit}-error"' in refused.text
    assert await accepting(client, seed, unit)

    until = (utcnow() + timedelta(days=2)).astimezone(TZ).replace(second=0, microsecond=0)
    closed = await post(
        client,
        f"/ui/units/{unit}/status",
        {
            "accepting": "false",
            "reason": "outbreak",
            "detail": "norovirus op de afdeling",
            "until": until.strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert closed.status_code == 303, closed.text
    status = (
        await client.get(f"/v1/units/{unit}/status", headers=auth(seed.keys["triagist"]))
    ).json()
    assert status["accepting"] is False
    assert status["not_accepting_reason"] == "outbreak"
    assert datetime.fromisoformat(status["not_accepting_until"]) == until
    mine = await client.get(closed.headers["location"])
    card = mine.text.split(f'id="unit-{unit}"')[1].split("</article>")[0]
    assert "geen opname mogelijk" in card
    assert "norovirus op de afdeling" in card
    assert 'data-action="reopen"' in card

    triagist = await add_person(db, Role.TRIAGIST, seed.organisations["rap"])
    await log_in(client, db, settings, triagist)
    board = await client.get("/ui/board")
    rows = board_rows(board.text)
    # Shown, not hidden, and after every open unit; no place can be held on it.
    assert rows[-1] == (str(unit), "0", "false")
    assert all(a == "true" for _, _, a in rows[:-1])
    assert len(rows) == 4
    row = row_of(board.text, unit)
    assert "geen opname mogelijk" in row
    assert "uitbraak" in row
    assert "norovirus op de afdeling" in row
    assert f"tot {until.strftime('%d-%m %H:%M')}" in row
    english = row_of((await client.get("/ui/board?lang=en")).text, unit)
    assert "not accepting" in english
    assert "outbreak" in english
    one = await client.get(f"/ui/board/units/{unit}")
    assert 'data-accepting="false"' in one.text

    await log_in(client, db, settings, planner)
    reopened = await post(client, f"/ui/units/{unit}/status", {"accepting": "true"})
    assert reopened.status_code == 303
    assert await accepting(client, seed, unit)
    await log_in(client, db, settings, triagist)
    rows = board_rows((await client.get("/ui/board")).text)
    assert (str(unit), "2", "true") in rows


async def test_another_organisations_unit_is_refused(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    foreign = seed.units["den-haag-elv-high"]
    planner = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"])
    await log_in(client, db, settings, planner)
    refused = await post(
        client,
        f"/ui/units/{foreign}/status",
        {"accepting": "false", "reason": "staff_shortage"},
    )
    assert refused.status_code == 403
    assert "text/html" in refused.headers["content-type"]
    assert await accepting(client, seed, foreign)
    forged = await client.post(
        f"/ui/units/{seed.units['leiden-grz']}/status",
        data={"accepting": "false", "reason": "staff_shortage"},
    )
    assert forged.status_code == 403  # no CSRF token
    assert await accepting(client, seed, seed.units["leiden-grz"])
