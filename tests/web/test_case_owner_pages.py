"""The case owner on the placement pages: shown on the queue and the detail page, unowned overdue
cases flagged, and a triagist takes a case with one form; on both backends."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from app.placement.models import Placement, TransferEvent
from tests.factories import Seed, add_person
from tests.web.test_board_and_placement_pages import audit, log_in, post


def card_of(html: str, pid: uuid.UUID) -> str:
    """The placement's card (board view) or row (list view)."""
    found = re.search(
        rf'<(article class="card"|tr) data-placement-id="{pid}".*?</(article|tr)>', html, re.S
    )
    assert found is not None, html[:500]
    return found.group(0)


async def refer(client: httpx.AsyncClient) -> uuid.UUID:
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
    return uuid.UUID(created.headers["location"].split("/")[3].split("?")[0])


async def test_owner_shown_flagged_and_taken_in_one_click(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    desk = await add_person(db, Role.REFERRER, seed.organisations["hospital"], name="Dirk Desk")
    await log_in(client, db, settings, desk)
    owned = await refer(client)
    unowned = await refer(client)
    # Nobody has owned the second case since yesterday: overdue for its urgency.
    async with db.sessionmaker() as session:
        await session.execute(
            update(Placement)
            .where(Placement.id == unowned)
            .values(
                owner_id=None,
                owner_name=None,
                owner_organisation_id=None,
                owner_since=None,
                created_at=utcnow() - timedelta(days=1),
            )
        )
        await session.commit()

    triagist = await add_person(db, Role.TRIAGIST, seed.organisations["rap"], name="Tessa Triage")
    await log_in(client, db, settings, triagist)
    for view in ("board", "list"):
        queue = await client.get("/ui/placements", params={"view": view, "lang": "en"})
        assert queue.status_code == 200, queue.text
        first, second = card_of(queue.text, owned), card_of(queue.text, unowned)
        assert "Dirk Desk" in first
        assert 'data-testid="unowned-overdue"' not in first
        assert "No case owner" in second
        assert 'data-testid="unowned-overdue"' in second
        assert "unowned too long" in second
    dutch = await client.get("/ui/placements", params={"lang": "nl"})
    assert "Geen casushouder" in card_of(dutch.text, unowned)

    page = await client.get(f"/ui/placements/{unowned}", params={"lang": "en"})
    assert 'data-testid="unowned-overdue"' in page.text
    assert f'action="/ui/placements/{unowned}/owner"' in page.text
    # Without the CSRF token the form is refused before anything changes.
    forged = await client.post(f"/ui/placements/{unowned}/owner", data={"action": "take"})
    assert forged.status_code == 403
    taken = await post(client, f"/ui/placements/{unowned}/owner", {"action": "take"})
    assert taken.status_code == 303, taken.text
    after = await client.get(f"/ui/placements/{unowned}", params={"lang": "en"})
    owner_line = re.search(r'<p data-testid="owner">(.*?)</p>', after.text, re.S)
    assert owner_line is not None
    assert "Tessa Triage" in owner_line.group(1)
    assert 'data-testid="unowned-overdue"' not in after.text
    assert f'action="/ui/placements/{unowned}/owner"' not in after.text  # already hers
    assert re.findall(r'<li data-event="([a-z_]+)"', after.text)[-1] == "owner_taken"
    queue = await client.get("/ui/placements", params={"lang": "en"})
    assert "Case owner: Tessa Triage" in card_of(queue.text, unowned)
    assert [r.object_id for r in await audit(db, "placement.page")][-1] == str(unowned)

    # A provider who holds no place for it may not take the case.
    outsider = await add_person(db, Role.PROVIDER, seed.organisations["vvt-den-haag"])
    await log_in(client, db, settings, outsider)
    refused = await post(client, f"/ui/placements/{owned}/owner", {"action": "take"})
    assert refused.status_code == 403


async def test_the_cancel_form_records_its_reason_code_and_trimmed_text(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    desk = await add_person(db, Role.REFERRER, seed.organisations["hospital"], name="Dirk Desk")
    await log_in(client, db, settings, desk)
    pid = await refer(client)
    # "other" without a text is refused by the same rule as the API's, nothing changes.
    refused = await post(client, f"/ui/placements/{pid}/cancel", {"reason": "other"})
    assert refused.status_code in (200, 303, 422)
    async with db.sessionmaker() as session:
        assert (await session.get(Placement, pid)).state != "cancelled"  # type: ignore[union-attr]
    done = await post(
        client,
        f"/ui/placements/{pid}/cancel",
        {"reason": "other", "reason_text": "  moved abroad  "},
    )
    assert done.status_code == 303, done.text
    async with db.sessionmaker() as session:
        placement = await session.get(Placement, pid)
        event = await session.scalar(
            select(TransferEvent).where(
                TransferEvent.placement_id == pid, TransferEvent.event_type == "cancelled"
            )
        )
    assert placement is not None
    assert placement.state == "cancelled"
    assert event is not None
    assert event.reason == "other"
    assert "moved abroad" in event.payload
    assert "  moved abroad" not in event.payload
