"""The board lists the region's open cases with their case owner, those nobody has owned for
longer than their urgency allows first and flagged; the panel is a live fragment, every case
shown is an access-log row; on both backends (docs/board-and-placements.md)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import update

from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from app.placement.models import Placement
from tests.factories import Seed, add_person
from tests.web.test_board_and_placement_pages import audit, log_in, post
from tests.web.test_case_owner_pages import refer


def panel(html: str) -> str:
    found = re.search(r'<section id="open-cases".*?</section>', html, re.S)
    assert found is not None, html[:500]
    return found.group(0)


def rows(html: str) -> list[tuple[str, str, str]]:
    """(placement id, owner, unowned-overdue flag) of each row, in the panel's order."""
    return re.findall(
        r'<tr data-placement-id="([0-9a-f-]+)" data-owner="([^"]*)" '
        r'data-unowned-overdue="(true|false)">',
        html,
    )


async def _unown(db: Database, pid: uuid.UUID, age: timedelta) -> None:
    async with db.sessionmaker() as session:
        await session.execute(
            update(Placement)
            .where(Placement.id == pid)
            .values(
                owner_id=None,
                owner_name=None,
                owner_organisation_id=None,
                owner_since=None,
                created_at=utcnow() - age,
            )
        )
        await session.commit()


async def test_board_lists_open_cases_with_owner_and_overdue_first(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    desk = await add_person(db, Role.REFERRER, seed.organisations["hospital"], name="Dirk Desk")
    await log_in(client, db, settings, desk)
    owned = await refer(client)
    fresh = await refer(client)  # unowned, but only for a minute: not yet overdue (UUL 3: 15)
    overdue = await refer(client)  # unowned since yesterday
    await _unown(db, fresh, timedelta(minutes=1))
    await _unown(db, overdue, timedelta(days=1))

    triagist = await add_person(db, Role.TRIAGIST, seed.organisations["rap"], name="Tessa Triage")
    await log_in(client, db, settings, triagist)
    board = await client.get("/ui/board", params={"lang": "en"})
    assert board.status_code == 200, board.text
    section = panel(board.text)
    assert 'hx-get="/ui/board/cases"' in section
    assert "sse:placement" in section  # refreshed live on any placement change
    assert rows(section) == [
        (str(overdue), "", "true"),
        (str(fresh), "", "false"),
        (str(owned), "Dirk Desk", "false"),
    ]
    assert 'data-unowned="2" data-unowned-overdue="1"' in section
    assert "unowned too long" in section
    assert "No case owner" in section
    shown = [r.object_id for r in await audit(db, "placement.board")]
    assert set(shown[-3:]) == {str(owned), str(fresh), str(overdue)}

    # Taking the overdue case moves it down and clears its flag in the live fragment.
    taken = await post(client, f"/ui/placements/{overdue}/owner", {"action": "take"})
    assert taken.status_code == 303, taken.text
    fragment = await client.get("/ui/board/cases", params={"lang": "nl"})
    assert fragment.status_code == 200
    after = rows(fragment.text)
    assert after[0] == (str(fresh), "", "false")
    assert set(after[1:]) == {  # owned, in queue order (equal urgency and waiting: by id)
        (str(owned), "Dirk Desk", "false"),
        (str(overdue), "Tessa Triage", "false"),
    }
    assert "Open casussen" in fragment.text
    assert "Geen casushouder" in fragment.text
    assert "te lang zonder casushouder" not in fragment.text

    # A referrer has no board, so no panel either.
    await log_in(client, db, settings, desk)
    refused = await client.get("/ui/board/cases")
    assert refused.status_code in (302, 303, 403)
